import decimal
import os
import signal
import time
from pyteleport import tp_dummy

got = []


def main():
    decimal.getcontext().prec = 40
    decimal.getcontext().rounding = decimal.ROUND_HALF_DOWN
    signal.signal(signal.SIGUSR2, lambda signum, frame: got.append(signum))
    third = decimal.Decimal(1) / 3
    tp_dummy()
    print(third, decimal.Decimal(2) / 3, decimal.getcontext().rounding)
    os.kill(os.getpid(), signal.SIGUSR2)
    time.sleep(0.05)
    print("handler ran:", got == [signal.SIGUSR2])


main()
