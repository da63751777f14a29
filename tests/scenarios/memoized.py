"""lru_cache'd functions across a teleport keep their cached results (a miss prints)."""
import functools

from pyteleport import tp_dummy


@functools.lru_cache(maxsize=3)
def square(x, *, loud=True):
    if loud:
        print("miss", x)
    return x * x


@functools.cache
def fact(n):
    print("fact miss", n)
    return 1 if n < 2 else n * fact(n - 1)


def run():
    total = square(2) + square(3) + square(4) + square(2) + square(5, loud=False) + fact(5)
    tp_dummy()
    total += square(2) + square(4) + square(3) + fact(6) + square(5, loud=False)
    return total, square.cache_info(), fact.cache_info()


print(run())
