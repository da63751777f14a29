"""A job checkpointed again and again, each time from the process the last checkpoint
was restored in: nested calls, a generator pipeline and state growing slowly. However
often it is moved, it must end as a plain run does."""
import os
import sys
import time

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def source(n):
    for i in range(n):
        yield i, i * i % 97


def work(totals):
    for i, v in source(STEPS):
        time.sleep(0.02)
        totals[v % 7] = totals.get(v % 7, 0) + v
        print(f"step {i} {v} {sorted(totals.items())} pid={os.getpid()}", flush=True)
    return sum(totals.values())


def main():
    totals = {}
    print(f"started pid={os.getpid()}", flush=True)
    result = work(totals)
    print(f"result {result} pid={os.getpid()}", flush=True)


main()
