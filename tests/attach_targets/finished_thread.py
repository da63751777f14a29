# Unmodified: a thread that ran and was joined before the move; the program, single-
# threaded by then, joins it again and asks whether it is alive after the move.
import os
import threading
import time


def work():
    time.sleep(0.05)


t = threading.Thread(target=work, name="early")
t.start()
t.join()
print(f"started pid={os.getpid()}", flush=True)
total = 0
for i in range(150):
    total += sum(range(i * 200))
    time.sleep(0.01)
    if i % 30 == 0:
        print(f"tick {i} pid={os.getpid()}", flush=True)
t.join()
print(f"done {total} {t.is_alive()} {t.name} pid={os.getpid()}", flush=True)
