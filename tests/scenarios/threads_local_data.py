"""threading.local data of several threads (a plain local and a class over it whose
__init__ counts its calls) across the teleport: each thread finds its own values, and
__init__ does not run again for a thread that had used the local."""
import threading
from pyteleport import tp_dummy

inits = []


class Session(threading.local):
    def __init__(self, kind):
        inits.append(threading.current_thread().name)
        self.kind = kind
        self.requests = 0


plain = threading.local()
session = Session("http")
ready = threading.Barrier(3)
moved = threading.Event()
results = {}


def worker(n):
    plain.value = n * 10
    session.requests += n
    ready.wait()
    moved.wait()
    session.requests += 1
    results[threading.current_thread().name] = (plain.value, session.kind, session.requests)


def main():
    plain.value = "main"
    session.requests = 100
    threads = [threading.Thread(target=worker, args=(n,), name=f"w{n}") for n in (1, 2)]
    for t in threads:
        t.start()
    ready.wait()
    tp_dummy()
    moved.set()
    for t in threads:
        t.join()
    late = threading.Thread(target=lambda: results.setdefault("late", (getattr(plain, "value", None), session.requests)), name="late")
    late.start()
    late.join()
    print(plain.value, session.requests, sorted(results.items()), sorted(inits))


main()
