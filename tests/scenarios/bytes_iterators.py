"""Loops over bytes and bytearray in flight across a teleport (their iterators are
bytes_iterator and bytearray_iterator)."""
from pyteleport import tp_dummy


def checksum(data):
    total = 0
    for i, b in enumerate(data):
        total = (total * 31 + b) % 1_000_003
        if i == 3:
            tp_dummy()
    return total


print(checksum(b"hello, bytes"), checksum(bytearray(b"and a bytearray")))
