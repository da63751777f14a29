from pyteleport import tp_dummy
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2
class Slotted:
    __slots__ = ("a", "b")
def make_counter():
    count = 0
    def inc():
        nonlocal count
        count += 1
        return count
    return inc
def main():
    shared = [1, 2]
    a, b = shared, [1, 2]
    p = Point(3, 4)
    s = Slotted(); s.a = "A"; s.b = {"k": (1, True, 1.0)}
    inc = make_counter(); inc()
    big = 10 ** 50
    sq = lambda v: v * v
    kw = dict(x=1, **{"y": 2})
    tp_dummy()
    print(a is shared, a == b, a is not b, p.norm2(), s.a, s.b, inc(), big, sq(7), kw)
    print(type(1), type(True), type(1.0), [1, True, 1.0])
main()
