"""Parameters captured by closures (one slot that is also a cell), exceptions whose
builtin base keeps fields outside `args`, `f(*temporary)` calls, locks, and a file opened
by a relative path before the working directory changed."""
import os
import sys
import tempfile
import threading

from pyteleport import tp_dummy


class Account:
    def __init__(self, owner):
        self.owner = owner
        self.lock = threading.Lock()

    def report(self, prefix):
        describe = lambda: f"{prefix}{self.owner}"  # `self` and `prefix` become cells
        with self.lock:
            tp_dummy()
            return describe(), self.lock.locked()


def spread(*items):
    tp_dummy()
    return sum(items)


def exceptions():
    exit_request = SystemExit(3)
    missing = OSError(2, "No such file")
    stop = StopIteration("done")
    tp_dummy()
    return exit_request.code, missing.errno, missing.strerror, stop.value


here = os.getcwd()
home = tempfile.mkdtemp()
os.chdir(home)
with open("notes.txt", "w") as f:
    f.write("first\nsecond\n")
notes = open("notes.txt")
notes.readline()
os.chdir("/")
print(Account("ann").report("owner: "))
print(spread(*range(4)), spread(*[10, 20]))
print(exceptions())
print(notes.readline().strip(), notes.name)
notes.close()
os.chdir(here)
os.unlink(os.path.join(home, "notes.txt"))
os.rmdir(home)
rlock = threading.RLock()
with rlock:
    tp_dummy()
    print("rlock held", rlock._is_owned())
print("rlock free", not rlock._is_owned())
sys.exit(0)
