import sys
from pyteleport import tp_dummy
def boom():
    tp_dummy()
    raise ValueError("after teleport")
def outer():
    try:
        boom()
    except ValueError as e:
        print("caught", repr(e))
    try:
        raise KeyError("k")
    except KeyError:
        tp_dummy()
        print("exc_info", sys.exc_info()[0].__name__)
        try:
            raise
        except KeyError as e2:
            print("bare raise", repr(e2))
    try:
        tp_dummy()
    finally:
        print("finally ran")
    return "done"
print(outer())
