"""itertools objects being consumed when the move happens: chain, islice, repeat,
cycle (during and after its first pass)."""
import itertools
import operator
import os
import time

print(f"started pid={os.getpid()}", flush=True)
spinner = itertools.cycle("|/-\\")
colors = itertools.cycle(iter(["red", "green", "blue", "cyan", "magenta"]))
parts = itertools.chain([1, 2, 3], range(10, 60), (x * x for x in range(100)))
window = itertools.islice(itertools.count(1000), 5, 400, 7)
fill = itertools.repeat("=", 100)
running = itertools.accumulate(range(1000))
products = itertools.accumulate([2, 3, 4, 5] * 30, operator.mul, initial=1)
second_first = operator.itemgetter(1, 0)
first = operator.itemgetter(0)
real_and_name = operator.attrgetter("real", "__class__.__name__")
for round_ in range(40):
    time.sleep(0.01)
    line = f"round {round_} {next(spinner)} {next(colors)} {next(parts)} {next(window)} {next(fill)} {next(running)} {next(products) % 1000}"
    if round_ == 2:
        next(colors)  # still inside its first pass for a while
    print(f"{line} pid={os.getpid()}", flush=True)
print([next(colors) for _ in range(7)], [next(spinner) for _ in range(5)], flush=True)
print(list(itertools.islice(parts, 5)), list(window)[-3:], len(list(fill)), next(running), next(products) % 997, flush=True)
print(second_first("abc"), first([9]), real_and_name(3), sorted([(2, "b"), (1, "a")], key=first), flush=True)
print(f"done pid={os.getpid()}", flush=True)
