"""Iterators half consumed across a teleport: map, filter, reversed, itertools.count."""
import functools
import itertools

from pyteleport import tp_dummy


def consume():
    doubled = map(lambda x: x * 2, [1, 2, 3, 4, 5])
    odd = filter(None, [0, 1, 0, 2, 3])
    back = reversed([10, 20, 30, 40])
    back_tuple = reversed((7, 8, 9))
    done = reversed([1])
    next(done)
    counter = itertools.count(5)
    big = itertools.count(2**70, 3)
    join = functools.partial(str.join, "-")
    first = next(doubled), next(odd), next(back), next(back_tuple), next(counter), next(big), join("abc")
    tp_dummy()
    return first, list(doubled), list(odd), list(back), list(back_tuple), list(done), next(counter), next(big), join("abc")


print(consume())
