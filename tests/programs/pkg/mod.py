from pyteleport import tp_dummy
from . import helper_value
def run():
    x = helper_value * 2
    tp_dummy()
    return x + 1
print(__name__, __package__, run())
