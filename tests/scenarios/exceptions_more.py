import sys
from pyteleport import tp_dummy
def pending_finally():
    try:
        try:
            raise ValueError("pending")
        finally:
            tp_dummy()
            print("finally with", sys.exc_info()[0].__name__)
    except ValueError as e:
        print("after finally", e)
def chained():
    try:
        try:
            raise KeyError("inner")
        except TypeError:
            print("not this one")
        except KeyError as e:
            tp_dummy()
            raise RuntimeError("outer") from e
    except RuntimeError as e:
        print("chained", repr(e), repr(e.__cause__))
pending_finally()
chained()
