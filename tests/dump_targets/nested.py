"""Nested calls: positional/default/star arguments, cell and free variables,
an unbound cell, a method, a nested function; the main thread parks innermost."""
import sys
import time

import _selfreport

MODULE_CONSTANT = ("nested", 3)


class Holder:
    kind = "holder"

    def method(self, y, seq):
        note = "in method"
        doubled = [v * 2 for v in seq if isinstance(v, int)]
        return deepest(y, doubled, label=note)


def deepest(y, seq, *, label):
    z = y + 1
    gone = "deleted before parking"
    del gone
    pair = (z, label)
    _selfreport.start(1)
    time.sleep(3600)
    return pair


def level_one(a, b=2, *args, **kwargs):
    total = a + b + sum(args)
    captured = [total, kwargs]

    def level_two(x):
        y = x * 3
        later_value = later if False else None
        return Holder().method(y, captured)

    result = level_two(total)
    later = "assigned after the call returns"
    return result


def main():
    depth = 0
    text = "main frame"
    return level_one(10, 20, 30, 40, flag=True, name="kw")


if __name__ == "__main__":
    main()
