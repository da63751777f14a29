"""Loops over bytes and bytearray in flight (bytes_iterator, bytearray_iterator)."""
import os
import time

print(f"started pid={os.getpid()}", flush=True)
total = 0
for data in (b"0123456789" * 3, bytearray(b"abcdefghij" * 3)):
    for b in data:
        time.sleep(0.01)
        total = (total * 31 + b) % 1_000_003
    print(f"part {total} pid={os.getpid()}", flush=True)
print(f"done {total} pid={os.getpid()}", flush=True)
