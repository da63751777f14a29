"""A tqdm progress bar (on stderr) over a loop, with its monitor thread running: the bar,
its monitor and the loop go on in the new process."""
import threading
import time

from pyteleport import tp_dummy
from tqdm import tqdm

tqdm.monitor_interval = 0.05  # the monitor thread wakes often (default 10 s)


def main():
    total = 0
    bar = tqdm(range(40), desc="work", mininterval=0)
    for i in bar:
        total += i * i
        time.sleep(0.005)
        if i == 20:
            tp_dummy()
            print("monitor alive:", tqdm.monitor is not None and tqdm.monitor.is_alive())
            print("threads:", sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()))
    bar.close()
    print("total", total, "bar n", bar.n)
    print("monitor after close:", tqdm.monitor is None or not tqdm.monitor.is_alive() or tqdm.monitor.name)


main()
