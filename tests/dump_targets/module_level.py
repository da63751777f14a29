"""Threads started from module level (one held in a global), and the main thread
parked directly in the module body: the innermost frame is `<module>`."""
import threading
import time

import _selfreport


def sleeper(tag):
    own = tag * 2
    time.sleep(3600)


threading.Thread(target=sleeper, args=("a",), name="first", daemon=True).start()
threading.Thread(target=sleeper, args=("b",), daemon=True).start()
held = threading.Thread(target=sleeper, args=("c",), name="held-in-global", daemon=True)
held.start()
counter = 3
_selfreport.start(4)
time.sleep(3600)
