"""Continuous work in two threads.  The main thread prints `tick N` every few
milliseconds; writing anything to stdin makes both threads stop and print their
counters and checksums, which the test verifies in closed form."""
import sys
import threading
import time

stop = threading.Event()
results = {}


def work(name):
    n = total = squares = 0
    while not stop.is_set():
        for _ in range(500):
            total += n
            squares += n * n
            n += 1
    results[name] = (n, total, squares)


def wait_for_stdin():
    sys.stdin.readline()
    stop.set()


def main():
    threading.Thread(target=wait_for_stdin, daemon=True).start()
    side = threading.Thread(target=work, args=("side",))
    side.start()
    ticks = 0
    last = time.monotonic()
    n = total = squares = 0
    print("ready", flush=True)
    while not stop.is_set():
        for _ in range(500):
            total += n
            squares += n * n
            n += 1
        now = time.monotonic()
        if now - last > 0.005:
            ticks += 1
            last = now
            print("tick", ticks, n, flush=True)
    results["main"] = (n, total, squares)
    side.join()
    for name, (count, t, sq) in sorted(results.items()):
        print("result", name, count, t, sq, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
