"""Generators in every state: created, suspended (plain and in `yield from`),
closed, and one whose body is the running frame the main thread parks in."""
import sys
import time

import _selfreport


def counter(start, stop):
    local_note = "counting"
    for n in range(start, stop):
        squared = n * n
        yield squared
    return "finished"


def delegating():
    before = "before delegation"
    result = yield from counter(3, 6)
    return result


def parked(tag):
    inside = {"tag": tag}
    yield 1
    _selfreport.start(1)
    time.sleep(3600)
    yield 2


def main():
    created = counter(0, 3)
    suspended = counter(10, 20)
    first = next(suspended)
    second = next(suspended)
    outer = delegating()
    got = next(outer)
    closed = counter(0, 1)
    drained = list(closed)
    genexp = (c.upper() for c in "xyz")
    head = next(genexp)
    running = parked("live")
    for produced in running:
        marker = produced


if __name__ == "__main__":
    main()
