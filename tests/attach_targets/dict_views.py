"""Views of dicts alive across the move: kept in variables (a dict's keys, values and
items, of a dict subclass too) and, at any moment, on the value stack in the middle of
`sorted(d.items())`. After the move each view still shows its own dict, changes included."""
import os
import time


class Scores(dict):
    pass


totals = {}
scores = Scores(alice=1)
keys, values, items = totals.keys(), totals.values(), totals.items()
score_items = scores.items()
print(f"started pid={os.getpid()}", flush=True)
for i in range(120):
    time.sleep(0.02)
    totals[i % 5] = totals.get(i % 5, 0) + i
    scores["bob"] = i
    print(f"{i} {sorted(totals.items())} {sorted(keys)} {sum(values)} {len(items)} {sorted(score_items)} pid={os.getpid()}",
          flush=True)
totals["late"] = -1
print(sorted(map(str, keys)), "late" in keys, ("late", -1) in items, sorted(score_items), type(items).__name__, flush=True)
print(f"done pid={os.getpid()}", flush=True)
