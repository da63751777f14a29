"""Holds an object of a class from a module that no longer exists on disk: a new process
cannot rebuild it, so a migration must fail and leave this process running."""
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
home = tempfile.mkdtemp()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


write(os.path.join(home, "vanishing_mod.py"), "class Thing:\n    def __init__(self):\n        self.n = 7\n")
sys.path.insert(0, home)
import vanishing_mod  # noqa: E402

thing = vanishing_mod.Thing()
os.unlink(os.path.join(home, "vanishing_mod.py"))
os.rmdir(home)
print(f"started pid={os.getpid()}", flush=True)
for i in range(30):
    time.sleep(0.02)
    print(f"tick {i} pid={os.getpid()}", flush=True)
print(f"done {thing.n} pid={os.getpid()}", flush=True)
