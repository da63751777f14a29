"""Objects whose __init__ takes most of the time: the move happens inside __init__,
entered by the class call (through a shim frame on 3.13 once specialized)."""
import os
import time


class Record:
    def __init__(self, k):
        time.sleep(0.008)
        self.k = k
        self.square = k * k


print(f"started pid={os.getpid()}", flush=True)
records = []
for k in range(60):
    records.append(Record(k))
    print(f"made {k} pid={os.getpid()}", flush=True)
print(sum(r.square for r in records), type(records[-1]).__name__, records[30].k, flush=True)
print(f"done pid={os.getpid()}", flush=True)
