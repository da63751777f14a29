"""Calls whose arguments are temporaries (`d * 1.0`): at the safe point right after such
a call returns, the argument is already freed."""
import math
import os
import time

print(f"started pid={os.getpid()}", flush=True)


def main():
    d = 0.01
    acc = 0.0
    for i in range(60):
        time.sleep(d * 1.0)
        acc += math.sqrt(d * 1.0 + i)
        if i % 10 == 0:
            print(f"step {i} pid={os.getpid()}", flush=True)
    print(f"ok {round(acc, 6)} pid={os.getpid()}", flush=True)


main()
