"""Set iteration in flight, SimpleNamespace, struct sequences across a teleport."""
import os
import sys
import time
import types

from pyteleport import tp_dummy


def walk():
    ns = types.SimpleNamespace(a=1, b=[2])
    when = time.gmtime(86400 * 365)
    st = os.stat(__file__)
    total = 0
    for n in {5, 10, 15, 20, 25}:
        total += n
        if n == 15:
            tp_dummy()
    return total, ns, when.tm_year, when.tm_zone, st.st_mtime == os.stat(__file__).st_mtime, sys.version_info > (3,)


print(walk())
