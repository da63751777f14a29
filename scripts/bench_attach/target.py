"""Benchmark target: a pure-Python busy loop at the bottom of a 20-frame deep stack.

Usage: target.py LINES [DEPTH] [WORK] [THREADS]
Prints "ready" once the stack is built, then LINES progress lines "progress I acc" (one
every WORK inner iterations), then "done ACC". The output is deterministic, so a moved
or restored run must print exactly what a plain run prints. THREADS (default 1): the
process's threads in all, the others each a few frames deep, ticking every 20 ms
(`Event.wait`) until the main loop ends and joins them.
"""
import sys
import threading

stop = threading.Event()
ticks = []


def tick(level):
    if level > 1:
        return tick(level - 1)
    n = 0
    while not stop.wait(0.02):
        n += 1
    ticks.append(n)


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
    threads = [threading.Thread(target=tick, args=(4,), daemon=False) for _ in range(int(sys.argv[4]) - 1 if len(sys.argv) > 4 else 0)]
    for t in threads:
        t.start()
    acc = nest(depth, lines, work)  # DEPTH nested nest() calls
    stop.set()
    for t in threads:
        t.join()
    print("done", acc, len(ticks), flush=True)


main()
