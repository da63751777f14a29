from pyteleport import tp_dummy
class C:
    def __init__(self, v):
        self.v = v
        tp_dummy()
        self.w = v + 1
class Ctx:
    def __enter__(self):
        print("enter"); return self
    def __exit__(self, *a):
        print("exit", a[0]); return False
def f():
    c = C(4)
    with Ctx():
        tp_dummy()
        print("in with", c.v, c.w)
    print(max(1, abs(-3), len([tp_dummy(), 2])))
f()
