"""Ends by killing itself with SIGTERM (after the move, in the new process)."""
import os
import signal
import time

print(f"started pid={os.getpid()}", flush=True)
for round_ in range(30):
    time.sleep(0.01)
    print(f"round {round_} pid={os.getpid()}", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(5)
print("not reached", flush=True)
