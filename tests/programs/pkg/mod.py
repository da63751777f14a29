import sys

from pyteleport import tp_dummy

from . import helper, helper_value


def run():
    x = helper_value * 2
    helper.record(x)
    helper.settings["scale"] = 3
    helper.LIMIT = 20
    tp_dummy()
    return helper.record(x + 1)


print(__name__, __package__, __spec__.name, sys.argv[1:])
print(run(), helper.calls, helper.settings, helper.LIMIT)
