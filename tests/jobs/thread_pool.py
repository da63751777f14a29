"""Checksum a set of generated blobs with a ThreadPoolExecutor, in rounds."""
import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def make_blob(seed, size):
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(size))


def work(item):
    key, blob = item
    time.sleep(0.02)  # pretend I/O
    h = hashlib.sha256(blob).hexdigest()
    return key, h, sum(blob) % 9973


def main():
    results = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for round_no in range(30):
            items = [(f"r{round_no:02d}-{i}", make_blob(round_no * 100 + i, 2000)) for i in range(8)]
            futures = [pool.submit(work, it) for it in items]
            round_sum = 0
            for fut in as_completed(futures):
                key, h, s = fut.result()
                results[key] = h
                round_sum += s
            first = min(k for k in results if k.startswith(f"r{round_no:02d}"))
            print(f"round {round_no:02d}: sum={round_sum} first={first}:{results[first][:10]}", flush=True)
            time.sleep(0.05)
    combined = hashlib.sha256("".join(results[k] for k in sorted(results)).encode()).hexdigest()
    print(f"result: items={len(results)} combined={combined[:16]}")


if __name__ == "__main__":
    main()
