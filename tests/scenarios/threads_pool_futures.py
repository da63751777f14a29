"""A ThreadPoolExecutor with futures in flight at the teleport: some done, some running,
some still queued, with done-callbacks; the pool is used again and shut down after."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from pyteleport import tp_dummy

release = threading.Event()
called = []


def work(n):
    if n >= 4:
        release.wait()
    time.sleep(0.002 * (n % 3))
    return n * n


def main():
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="pool")
    futures = [pool.submit(work, n) for n in range(10)]
    for f in futures:
        f.add_done_callback(lambda f: called.append(f.result()))
    wait(futures[:4])
    states = [f.done() for f in futures]
    tp_dummy()
    release.set()
    results = sorted(f.result() for f in as_completed(futures))
    more = list(pool.map(work, range(10, 14)))
    pool.shutdown(wait=True)
    print(states[:4], results, more, sorted(called))
    print("threads left:", [t.name for t in threading.enumerate() if t is not threading.main_thread()])


main()
