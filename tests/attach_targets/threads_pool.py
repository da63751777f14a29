"""A thread-pool job as people write it: a ThreadPoolExecutor hashing chunks, the main
thread collecting results with as_completed and a tqdm-free progress line."""
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def digest(n):
    time.sleep(0.02)
    return n, hashlib.sha256(str(n).encode() * 1000).hexdigest()[:12]


print(f"started pid={os.getpid()}", flush=True)
results = {}
with ThreadPoolExecutor(max_workers=4) as pool:
    for batch in range(16):
        futures = [pool.submit(digest, batch * 10 + i) for i in range(10)]
        for f in as_completed(futures):
            n, h = f.result()
            results[n] = h
        print(f"batch {batch} done, {len(results)} results pid={os.getpid()}", flush=True)
print("first", results[0], "last", results[159], flush=True)
print(f"done pid={os.getpid()}", flush=True)
