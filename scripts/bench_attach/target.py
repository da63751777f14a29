"""Benchmark target: a pure-Python busy loop at the bottom of a 20-frame deep stack.

Usage: target.py LINES [DEPTH] [WORK]
Prints "ready" once the stack is built, then LINES progress lines "progress I acc" (one
every WORK inner iterations), then "done ACC". The output is deterministic, so a moved
or restored run must print exactly what a plain run prints.
"""
import sys


def spin(lines, work):
    acc = 0
    for i in range(lines):
        for j in range(work):
            acc = (acc * 31 + j + i) % 1000003
        print("progress", i, acc, flush=True)
    return acc


def nest(level, lines, work):
    if level > 1:
        return nest(level - 1, lines, work) + 0
    print("ready", flush=True)
    return spin(lines, work)


def main():
    lines = int(sys.argv[1])
    depth = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    print("done", nest(depth, lines, work), flush=True)  # DEPTH nested nest() calls


main()
