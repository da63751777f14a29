"""State kept outside the objects the program references: the decimal context (a ledger's
precision and rounding) and a Python signal handler. A fresh interpreter has neither, so a
move that dropped them would go on silently wrong (other digits) or die of the signal."""
import decimal
import os
import signal
import time

decimal.getcontext().prec = 50
decimal.getcontext().rounding = decimal.ROUND_DOWN
decimal.getcontext().traps[decimal.Inexact] = False
got = []
signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
print(f"started pid={os.getpid()}", flush=True)
x = decimal.Decimal(1)
for i in range(60):
    time.sleep(0.02)
    x = x / 7 * 3 + 1
    print(i, x, f"pid={os.getpid()}", flush=True)
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.05)
print("handler ran:", got == [signal.SIGUSR1], "precision:", decimal.getcontext().prec, flush=True)
