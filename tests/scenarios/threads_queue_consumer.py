# A producer/consumer pair over queue.Queue; the consumer thread teleports the whole
# program in the middle of its work, and every item is consumed exactly once.
import queue
import threading

from pyteleport import dummy_teleport

q = queue.Queue()
seen = []


def consumer():
    while True:
        item = q.get()
        if item is None:
            q.task_done()
            break
        seen.append(item)
        if item == 5:
            dummy_teleport()
        q.task_done()


c = threading.Thread(target=consumer, name="consumer")
c.start()
for i in range(10):
    q.put(i)
q.join()
q.put(None)
c.join()
print("seen", seen, "unfinished", q.unfinished_tasks)
