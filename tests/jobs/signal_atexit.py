"""A worker that reports stats on SIGUSR1 and flushes a summary from an atexit handler."""
import atexit
import os
import random
import signal
import sys
import time

stats = {"processed": 0, "errors": 0, "reports": 0}


def on_usr1(signum, frame):
    stats["reports"] += 1
    print(f"[SIGUSR1] processed={stats['processed']} errors={stats['errors']}", flush=True)


def on_exit():
    print(f"atexit: final stats {sorted(stats.items())}", flush=True)
    print("atexit: summary flushed", file=sys.stderr, flush=True)


def handle(rnd, item):
    if rnd.random() < 0.05:
        raise ValueError(f"bad item {item}")
    return item * item


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    atexit.register(on_exit)
    rnd = random.Random(12)
    acc = 0
    for item in range(300):
        try:
            acc += handle(rnd, item)
            stats["processed"] += 1
        except ValueError as e:
            stats["errors"] += 1
            print(f"error: {e}", file=sys.stderr, flush=True)
        if item % 30 == 29:
            os.kill(os.getpid(), signal.SIGUSR1)  # the ops script's periodic status poke
        time.sleep(0.01)
    print(f"result: acc={acc} processed={stats['processed']} errors={stats['errors']} reports={stats['reports']}")


if __name__ == "__main__":
    main()
