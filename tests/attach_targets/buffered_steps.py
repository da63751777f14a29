"""A job printing ordinary print() lines, never flushing: with stdout a file they sit in
its buffer until 8 KiB gather. A checkpoint taken while it runs must not lose them."""
import sys
import time

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def main():
    total = 0
    for i in range(STEPS):
        total += i * i % 89
        print(f"step {i} total {total}")
        time.sleep(0.01)
    print(f"result {total}")


main()
