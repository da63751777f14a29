"""A teleport inside __init__ once the class call is specialized (3.13 enters __init__
through a shim frame that hands `self` to the caller)."""
from pyteleport import tp_dummy


class Point:
    def __init__(self, k, go):
        self.k = k
        if go:
            tp_dummy()
        self.double = k * 2


def build():
    made = []
    for k in range(40):
        made.append(Point(k, k == 30))
    return made


points = build()
print(len(points), points[30].k, points[30].double, type(points[30]).__name__, sum(p.double for p in points))
