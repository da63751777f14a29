import os
import time


def nap():
    time.sleep(3)
    return "rested"


print(f"started pid={os.getpid()}", flush=True)
print(nap(), f"pid={os.getpid()}", flush=True)
