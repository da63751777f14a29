"""Classes and library objects the program defines or holds: decorators from other
modules (contextmanager, wraps), ABCs, namedtuples, dataclasses, descriptors, C-backed
instances (random.Random, OrderedDict, defaultdict), exception groups, send()."""
import abc
import contextlib
import dataclasses
import functools
import random
import sys
from collections import OrderedDict, defaultdict, namedtuple

from pyteleport import tp_dummy


@contextlib.contextmanager
def tag(name):
    print("<" + name + ">")
    yield name.upper()
    print("</" + name + ">")


def logged(func):
    @functools.wraps(func)
    def wrapper(*args):
        return ("logged", func(*args))
    return wrapper


@logged
def double(x):
    return 2 * x


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Shape(abc.ABC):
    @abc.abstractmethod
    def area(self): ...

    @property
    def kind(self):
        return type(self).__name__

    @staticmethod
    def unit():
        return "cm2"

    @classmethod
    def make(cls, *args):
        return cls(*args)


class Square(Shape):
    def __init__(self, side):
        self.side = side

    def area(self):
        return self.side ** 2


Point = namedtuple("Point", "x y")


@dataclasses.dataclass
class Item:
    name: str
    qty: int = 1
    tags: list = dataclasses.field(default_factory=list)


def generator():
    got = yield "ready"
    tp_dummy()
    yield got * 2


def main():
    fib(10)
    rng = random.Random(42)
    rng.random()
    od = OrderedDict(b=1, a=2)
    od.move_to_end("b")
    dd = defaultdict(list)
    dd["k"].append(1)
    sq = Square.make(3)
    pt = Point(1, y=[2])
    item = Item("bolt", tags=["m3"])
    with tag("outer") as t:
        tp_dummy()
        print(t, double(21), sq.area(), sq.kind, sq.unit(), isinstance(sq, Shape))
    print(pt, pt._asdict(), pt._replace(x=5), item, dataclasses.asdict(item))
    print(rng.random(), list(od.items()), od, dict(dd), dd["new"])
    g = generator()
    print(next(g), g.send(21))
    try:
        raise ExceptionGroup("group", [ValueError(1), KeyError(2)])
    except* ValueError as eg:
        tp_dummy()
        print("handled", repr(eg.exceptions))
    except* KeyError as eg:
        print("handled", repr(eg.exceptions))
    print("limit", sys.getrecursionlimit(), fib(30), fib.cache_parameters())


sys.setrecursionlimit(3000)
main()
