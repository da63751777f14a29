"""A numpy job: arrays of several dtypes and orders, a view sharing its base, an object
array, and random generators whose exact state must go on. Their C types are carried by
having the target run their `__reduce_ex__` at the safe point; nothing of that may stay
behind in the program."""
import os
import sys
import time

import numpy as np

rng = np.random.default_rng(11)
legacy = np.random.RandomState(5)
weights = np.zeros((8, 3), order="F")
base = np.arange(24, dtype=np.int32).reshape(4, 6)
view = base[1:, ::2]  # non-contiguous, shares base's memory
labels = np.array(["a", None, 3], dtype=object)
print(f"started pid={os.getpid()}", flush=True)
for step in range(40):
    time.sleep(0.01)
    weights += rng.normal(size=weights.shape) * 0.1
    view += 1
    print(f"step {step} {weights.sum():.10f} {legacy.randint(0, 10**6)} {base.sum()} pid={os.getpid()}", flush=True)
assert np.shares_memory(view, base), "the view lost its base"
print(weights.flags["F_CONTIGUOUS"], labels.tolist(), rng.integers(0, 10**9), legacy.random_sample())
print("left behind:", [k for k in vars(sys) if k.startswith("_pyteleport_attach")], flush=True)
print(f"done pid={os.getpid()}", flush=True)
