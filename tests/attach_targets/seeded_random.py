"""A seeded program drawing random numbers before and after the move: the module's
generator and a private one must go on with the same sequence."""
import os
import random
import time

random.seed(2024)
rng = random.Random(7)
rng.gauss(0, 1)  # leaves a cached gauss_next
print(f"started pid={os.getpid()}", flush=True)
total = 0.0
for round_ in range(40):
    time.sleep(0.01)
    total += random.random()
    print(f"round {round_} {random.randint(0, 10**9)} {rng.random():.12f} pid={os.getpid()}", flush=True)
print(f"{total:.12f} {random.choice('abcdefgh')} {rng.gauss(0, 1):.12f} {random.getrandbits(64)}", flush=True)
print(f"done pid={os.getpid()}", flush=True)
