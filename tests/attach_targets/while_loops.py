"""While loops (3.11 tests their condition with a conditional backward jump) at module
level and in a function, and a dict and a set keyed by instances whose hash reads their
own state (a frozen dataclass, a custom __hash__)."""
import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    n: int


class Custom:
    def __init__(self, a):
        self.a = a

    def __hash__(self):
        return hash(self.a)

    def __eq__(self, other):
        return isinstance(other, Custom) and other.a == self.a


table = {Key("a", 1): "first", Custom(2): "second"}
members = {Key("b", 2), Custom(3)}


def spin(limit):
    x, i = 0.5, 0
    while i < limit:
        x = 3.9 * x * (1 - x)
        i += 1
        if i % 400_000 == 0:
            print(f"spin {i} {x!r} pid={os.getpid()}", flush=True)
    return x


print(f"started pid={os.getpid()}", flush=True)
total = 0
rounds = 0
while rounds < 6:
    total += spin(800_000) > 0.5
    rounds += 1
    print(f"round {rounds} pid={os.getpid()}", flush=True)
print(total, table[Key("a", 1)], table[Custom(2)], Key("b", 2) in members, Custom(3) in members, flush=True)
print(f"done pid={os.getpid()}", flush=True)
