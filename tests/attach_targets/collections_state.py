"""Containers of the collections module alive across the move (their state lives in C
fields): used and printed in full at the end."""
import os
import time
from collections import OrderedDict, defaultdict, deque


class History(deque):
    pass


class Registry(OrderedDict):
    def __init__(self, owner):
        super().__init__()
        self.owner = owner


class Counts(defaultdict):
    __slots__ = ("label",)


window = deque(range(200), maxlen=150)  # spans several blocks, starts mid-block
for _ in range(37):
    window.popleft()
unbounded = deque("abc")
unbounded.appendleft(unbounded)  # refers to itself
history = History([1, 2], maxlen=5)
history.note = "kept"
by_letter = defaultdict(list)
for word in ["apple", "avocado", "banana", "cherry", "blueberry"]:
    by_letter[word[0]].append(word)
nested = defaultdict(lambda: defaultdict(int))
nested["x"]["y"] += 2
counts = Counts(int, {"seed": 1})
counts.label = "counts"
order = OrderedDict.fromkeys("abcde", 0)
order.move_to_end("b")
order.move_to_end("e", last=False)
registry = Registry("me")
registry["z"] = 1
registry["a"] = 2
registry.move_to_end("z")
shared = [window, order]
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    window.append(1000 + round_)
    history.append(round_)
    by_letter["r"].append(round_)
    nested[round_ % 3][round_ % 2] += 1
    counts[round_ % 4] += 1
    order[f"k{round_ % 5}"] = round_
    print(f"round {round_} pid={os.getpid()}", flush=True)
order.move_to_end("a")
print(list(window)[:5], list(window)[-3:], len(window), window.maxlen, shared[0] is window, flush=True)
print(len(unbounded), unbounded[0] is unbounded, list(unbounded)[1:], unbounded.maxlen, flush=True)
print(type(history).__name__, list(history), history.maxlen, history.note, flush=True)
print(dict(by_letter), by_letter["new"], by_letter.default_factory is list, flush=True)
print({k: dict(v) for k, v in nested.items()}, dict(nested["fresh"]), flush=True)
print(type(counts).__name__, dict(counts), counts.label, counts["missing"], flush=True)
print(list(order.items()), order.popitem(last=False), shared[1] is order, flush=True)
print(type(registry).__name__, list(registry), registry.owner, registry.popitem(), flush=True)
print(f"done pid={os.getpid()}", flush=True)
