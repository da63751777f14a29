"""Several threads, named and unnamed (one of them also held in a global), each parked in its own function with its
own locals, plus the main thread."""
import threading
import time

import _selfreport


def alpha_work(count):
    alpha_local = "alpha"
    numbers = list(range(count))
    time.sleep(3600)


def beta_work(mapping):
    beta_local = 2.5
    keys = sorted(mapping)
    time.sleep(3600)


def gamma_outer(depth):
    gamma_local = depth * 10
    return gamma_inner(gamma_local)


def gamma_inner(value):
    inner_local = (value, "gamma")
    time.sleep(3600)


def anonymous_work():
    nameless = None
    time.sleep(3600)


def launch():
    threading.Thread(target=alpha_work, args=(4,), name="worker-alpha", daemon=True).start()
    threading.Thread(target=beta_work, args=({"x": 1, "y": 2},), name="worker-beta", daemon=True).start()
    threading.Thread(target=gamma_outer, args=(3,), name="worker-gamma", daemon=True).start()
    threading.Thread(target=anonymous_work, daemon=True).start()


def delta_work():
    delta_local = b"delta"
    time.sleep(3600)


def main_park():
    main_local = "main thread"
    _selfreport.start(6)
    time.sleep(3600)


if __name__ == "__main__":
    launch()
    # Started last and also referenced from a global, like most real programs do.
    KEPT = threading.Thread(target=delta_work, name="worker-delta", daemon=True)
    KEPT.start()
    main_park()
