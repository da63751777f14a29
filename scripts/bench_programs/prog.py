"""Benchmark programs, run by scripts/bench with either pyteleport (ours or the 0.3.4 reference).

    python prog.py CASE MODE [PATH]

CASE: seed | depth-N | bytes-MB | bytearray-MB | floats | target
MODE: tp    teleport once with tp_dummy() (the same call in both implementations)
      plain the same program without the teleport call
      file  save a snapshot to PATH and go on (ours: teleport(to_file=PATH, exit=False),
            reference: dump(PATH))

Every case but `target` prints one line `RESULT <value> moved=<bool>` at the end, where
moved says whether the line comes from another process than the one that started.
`target` builds a 100-frame stack holding 10,000 objects, prints `READY <pid>` and sleeps.
"""
import os
import sys
import time

import pyteleport
from pyteleport import tp_dummy

CASE = sys.argv[1]
MODE = sys.argv[2]
PATH = sys.argv[3] if len(sys.argv) > 3 else None
OURS = hasattr(pyteleport, "dummy_teleport")  # the reference has a `teleport` submodule
ORIGIN = os.getpid()


def report(value):
    print(f"RESULT {value} moved={os.getpid() != ORIGIN}", flush=True)


# Each teleport site below repeats the same few lines so that the captured stack holds
# exactly the program's frames (no helper frame in between).

def seed():
    def a():
        def b():
            def c():
                result = "hello"
                other = "world"
                if MODE == "tp":
                    tp_dummy()
                elif MODE == "file":
                    pyteleport.teleport(to_file=PATH, exit=False) if OURS else pyteleport.dump(PATH)
                return result + " " + other
            return c() + "!"
        return b()
    return a()


def depth(n):
    def rec(k):
        if k == 1:
            if MODE == "tp":
                tp_dummy()
            elif MODE == "file":
                pyteleport.teleport(to_file=PATH, exit=False) if OURS else pyteleport.dump(PATH)
            return 1
        return rec(k - 1) + 1
    return rec(n)


def hold_bytes(kind, megabytes):
    blob = kind(bytes(range(256)) * (megabytes * 1024 * 1024 // 256))
    if MODE == "tp":
        tp_dummy()
    elif MODE == "file":
        pyteleport.teleport(to_file=PATH, exit=False) if OURS else pyteleport.dump(PATH)
    return f"{len(blob)}:{sum(blob[::4099])}"


def hold_floats():
    xs = [i * 0.5 for i in range(1_000_000)]
    if MODE == "tp":
        tp_dummy()
    elif MODE == "file":
        pyteleport.teleport(to_file=PATH, exit=False) if OURS else pyteleport.dump(PATH)
    return f"{len(xs)}:{sum(xs)}"


def target_frame(n):
    # 100 values per frame, 100 frames: 10,000 small lists, ints and strings.
    chunk = {f"k{n}_{i}": ([i, n] if i % 3 == 0 else i * 1000 + n if i % 3 == 1 else f"s{n}_{i}")
             for i in range(100)}
    if n == 1:
        print(f"READY {os.getpid()}", flush=True)
        while True:
            time.sleep(3600)
    return target_frame(n - 1) + len(chunk)


if CASE == "seed":
    report(seed())
elif CASE.startswith("depth-"):
    n = int(CASE[len("depth-"):])
    sys.setrecursionlimit(n + 1000)
    report(depth(n))
elif CASE.startswith("bytes-"):
    report(hold_bytes(bytes, int(CASE[len("bytes-"):])))
elif CASE.startswith("bytearray-"):
    report(hold_bytes(bytearray, int(CASE[len("bytearray-"):])))
elif CASE == "floats":
    report(hold_floats())
elif CASE == "target":
    report(target_frame(100))
else:
    raise SystemExit(f"unknown case {CASE}")
