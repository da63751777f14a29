"""A job with cleanup registered with atexit (a report written at the end, a logging
shutdown) and caches built of weak references (WeakValueDictionary, WeakSet, a weak
method, a callback that counts evictions). A move that dropped the handlers would end
without the report; one that broke the references would answer from stale entries."""
import atexit
import gc
import logging
import os
import sys
import time
import weakref

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s")
log = logging.getLogger("job")


class Item:
    def __init__(self, key):
        self.key = key

    def describe(self):
        return f"item {self.key}"


evicted = []
live = [Item(k) for k in range(6)]
cache = weakref.WeakValueDictionary((i.key, i) for i in live)
seen = weakref.WeakSet(live)
watch = weakref.ref(live[0], lambda r: evicted.append("first"))
describe = weakref.WeakMethod(live[1].describe)
totals = {"rounds": 0}


def report(kind):
    print(f"report ({kind}): {totals['rounds']} rounds, cache {sorted(cache)}, evicted {evicted}, pid={os.getpid()}", flush=True)


atexit.register(report, "final")
atexit.register(lambda: print("cleanup ran", flush=True))
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(60):
    time.sleep(0.02)
    totals["rounds"] += 1
    if round_ % 10 == 9 and live:
        live.pop(0)
        gc.collect()
    print(round_, len(cache), len(seen), watch() is None, describe() and describe()(), f"pid={os.getpid()}", flush=True)
log.info("done, %d live", len(live))
