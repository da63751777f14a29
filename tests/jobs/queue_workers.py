"""Producer/consumer with threads and queue.Queue; results collected in order."""
import queue
import random
import threading
import time

N_ITEMS = 240
N_WORKERS = 3
STOP = object()


def producer(q, seed):
    rnd = random.Random(seed)
    for i in range(N_ITEMS):
        q.put((i, [rnd.randint(1, 1000) for _ in range(50)]))
        time.sleep(0.01)
    for _ in range(N_WORKERS):
        q.put(STOP)


def consumer(q, out, lock):
    while True:
        item = q.get()
        if item is STOP:
            q.task_done()
            return
        i, nums = item
        value = sum(n * n for n in nums) % 100003
        with lock:
            out[i] = value
        q.task_done()


def main():
    q = queue.Queue(maxsize=16)
    out = {}
    lock = threading.Lock()
    workers = [threading.Thread(target=consumer, args=(q, out, lock), name=f"worker-{k}") for k in range(N_WORKERS)]
    for w in workers:
        w.start()
    prod = threading.Thread(target=producer, args=(q, 77), name="producer")
    prod.start()
    reported = 0
    while reported < N_ITEMS:
        with lock:
            ready = reported in out
        if ready:
            if reported % 20 == 0:
                print(f"item {reported}: {out[reported]}", flush=True)
            reported += 1
        else:
            time.sleep(0.005)
    prod.join()
    q.join()
    for w in workers:
        w.join()
    print(f"result: items={len(out)} checksum={sum(out.values()) % 1000003}")


if __name__ == "__main__":
    main()
