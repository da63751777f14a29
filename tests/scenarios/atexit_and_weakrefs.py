"""Weak references (plain, with callbacks, KeyedRef, WeakMethod, proxies, dead ones) and
weak containers alive across the teleport, and atexit handlers registered before it that
run at the end of the new process, in the original order."""
import atexit
import gc
import weakref
from pyteleport import tp_dummy


class Node:
    def __init__(self, name):
        self.name = name

    def hello(self):
        return "hello " + self.name


died = []
nodes = [Node("a"), Node("b"), Node("c")]
plain = weakref.ref(nodes[0])
with_callback = weakref.ref(nodes[1], lambda r: died.append("b"))
method = weakref.WeakMethod(nodes[2].hello)
proxy = weakref.proxy(nodes[0])
values = weakref.WeakValueDictionary({n.name: n for n in nodes})
keys = weakref.WeakKeyDictionary({n: len(n.name) for n in nodes})
members = weakref.WeakSet(nodes)
gone = Node("gone")
dead = weakref.ref(gone)
del gone
atexit.register(print, "exit handler", 1, sep=": ")
atexit.register(lambda: print("exit handler 2 sees", sorted(values)))


def main():
    tp_dummy()
    print(plain() is nodes[0], plain().name, proxy.name, method()())
    print(dead() is None, sorted(values), sorted(k.name for k in keys), len(members))
    removed = nodes.pop(1)
    del removed
    gc.collect()
    print("after dropping b:", died, with_callback() is None, sorted(values), len(keys), len(members))
    print(weakref.ref(nodes[0]) is plain)


main()
