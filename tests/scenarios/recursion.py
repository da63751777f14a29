import sys
from pyteleport import tp_dummy
sys.setrecursionlimit(5000)
def rec(n):
    if n == 0:
        tp_dummy()
        return 0
    return rec(n - 1) + 1
print(rec(1000))
