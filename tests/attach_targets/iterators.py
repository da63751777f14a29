"""Iterators a loop is in the middle of consuming when the move happens: map, filter,
reversed (list and sequence), itertools.count, zip and enumerate over them."""
import functools
import itertools
import os
import time


def squares():
    for n in itertools.count(3, 2):
        yield n * n


print(f"started pid={os.getpid()}", flush=True)
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"] * 5
lengths = map(len, words)
evens = filter(lambda n: n % 2 == 0, range(1000))
backwards = reversed(words)
back_text = reversed("abcdefghijklmnopqrstuvwxyz" * 2)
ticker = itertools.count(10**20, 7)  # beyond a C counter
feed = squares()
parse_binary = functools.partial(int, base=2)
tagged = functools.partial(print, "tag:", sep="|", flush=True)
for i, (w, n, e, b, c) in enumerate(zip(words, lengths, evens, backwards, back_text)):
    time.sleep(0.02)
    print(f"{i} {w} {n} {e} {b} {c} {next(ticker)} {next(feed)} pid={os.getpid()}", flush=True)
print(list(lengths), next(evens), list(backwards), "".join(back_text), next(ticker), flush=True)
tagged(parse_binary("101101"), parse_binary.keywords)
print(f"done pid={os.getpid()}", flush=True)
