"""The seed example: the call to dummy_teleport() returns in a new process."""
import os

from pyteleport import dummy_teleport


def log(*args):
    print(f"[pid {os.getpid()}]", *args, flush=True)


def a():
    def b():
        def c():
            result = "hello"
            r2 = "world"
            log("before teleport")
            dummy_teleport()
            log("after teleport")
            return result + " " + r2
        return c() + "!"
    return b()


log(a())
