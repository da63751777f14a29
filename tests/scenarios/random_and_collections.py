"""The random module's generator (seeded) and collections' C containers across a
teleport: the same numbers are drawn after it, containers keep order and behaviour."""
import random
from collections import OrderedDict, defaultdict, deque

from pyteleport import tp_dummy

random.seed(99)
draws = [random.random() for _ in range(3)]
random.gauss(0, 1)  # caches gauss_next in the module's generator


class Queue(deque):
    pass


def work():
    recent = deque(range(100), maxlen=70)
    for _ in range(9):
        recent.popleft()
    mine = Queue("xy", maxlen=4)
    mine.tag = "q"
    groups = defaultdict(set)
    groups["odd"].add(1)
    order = OrderedDict.fromkeys("pqrs")
    order.move_to_end("p")
    tp_dummy()
    recent.append(-1)
    mine.extend("zw!")
    groups["even"].add(2)
    order["t"] = 1
    print(list(recent)[:3], list(recent)[-2:], len(recent), recent.maxlen)
    print(type(mine).__name__, list(mine), mine.maxlen, mine.tag)
    print(sorted(groups.items()), groups.default_factory is set)
    print(list(order), order.popitem(last=False))
    print(random.gauss(0, 1), random.random(), random.randrange(10**12))


work()
print(draws)
