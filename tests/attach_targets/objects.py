"""Many kinds of objects alive across the move; printed in full at the end."""
import os
import re
import time
from collections import namedtuple

Point = namedtuple("Point", "x y")


class Shape:
    def __init__(self, side):
        self._side = side

    @property
    def area(self):
        return self._side ** 2

    @staticmethod
    def unit():
        return "cm2"

    @classmethod
    def square(cls, side):
        return cls(side)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b


class Plain:
    def __init__(self, name):
        self.name = name
        self.tags = {"x", "y"}


def make_adder(k):
    def add(v):
        return v + k
    return add


huge = 3 ** 400
neg = -(2 ** 100) + 1
floats = [0.1, -0.0, 1e300, float("inf")]
blob = bytes(range(256)) * 3
shared = [1, 2, 3]
alias = shared
nested = {"shared": shared, "tuple": (shared, frozenset({1, 2})), "set": {3, 4}}
slot = Slotted(huge, "b")
plain = Plain("p")
add5 = make_adder(5)
point = Point(3, [4])
shape = Shape.square(7)
window = slice(1, None, 2)
word = re.compile(r"(?P<w>[a-z]+)(\d*)", re.IGNORECASE | re.MULTILINE)
raw_bytes = re.compile(rb"\x00+")
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    shared.append(round_)
    print(f"round {round_} pid={os.getpid()}", flush=True)
print(huge % 1000003, neg, floats, len(blob), blob[-1], alias is shared, nested["tuple"][0] is shared,
      sorted(nested["set"]), slot.a == huge, slot.b, plain.name, sorted(plain.tags), add5(10), len(shared), flush=True)
print(point, point._replace(x=0), shape.area, Shape.unit(), list(range(10))[window], flush=True)
print(word.findall("Abc12 de f9"), word.groupindex["w"], word.flags == (re.I | re.M | re.U), raw_bytes.split(b"a\0\0b"), flush=True)
print(f"done pid={os.getpid()}", flush=True)
