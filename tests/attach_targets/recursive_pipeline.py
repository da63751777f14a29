"""Deep recursion and a generator pipeline that keep changing the frame stack (its head
lives on the C stack on 3.11/3.12): a checkpoint taken while it runs must be of one
moment."""
import os
import time


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


def numbers():
    for i in range(60):
        yield i


def squares(items):
    for i in items:
        time.sleep(0.005)
        value = 0
        for k in range(20):
            value += ackermann(2, 3 + (i + k) % 40)
        yield i, value


print(f"started pid={os.getpid()}", flush=True)
total = 0
for i, value in squares(numbers()):
    total += value
    print(f"step {i} {value} total {total} pid={os.getpid()}", flush=True)
print(f"total {total} pid={os.getpid()}", flush=True)
