"""Benchmark job for `pyteleport run --every`: holds 100 MB (a bytearray and a list of
floats) and runs a deterministic pure-Python compute loop, printing one line per chunk.

Usage: ops_job.py CHUNKS [WORK]   (WORK inner iterations per chunk)
"""
import sys


def main():
    chunks = int(sys.argv[1])
    work = int(sys.argv[2]) if len(sys.argv) > 2 else 3_000_000
    blob = bytearray(90 << 20)           # 90 MB of bytes
    blob[::4096] = bytes(range(256)) * (len(blob[::4096]) // 256) + bytes(len(blob[::4096]) % 256)
    weights = [i * 0.5 for i in range(1_250_000)]   # ~10 MB more as a list of floats
    acc = 0
    for c in range(chunks):
        for j in range(work):
            acc = (acc * 31 + j + c) % 1000003
        weights[c] += acc
        blob[c] = acc % 256
        print("chunk", c, acc, sum(blob[::1 << 20]), flush=True)
    print("done", acc, flush=True)


main()
