"""datetime, timedelta, timezone and Decimal values alive across the move (C types of
extension modules)."""
import datetime as dt
import os
import time
from decimal import Decimal

start = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
aware = dt.datetime(2021, 11, 7, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST"))
utc = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
folded = dt.datetime(2021, 11, 7, 1, 30, fold=1)
day = dt.date(1999, 12, 31)
alarm = dt.time(6, 45, 30, 250, tzinfo=dt.timezone(dt.timedelta(minutes=90)))
step = dt.timedelta(days=-3, seconds=7, microseconds=11)
price = Decimal("19.99")
tiny = Decimal("-0.000000000000000000000000000123456789012345678901234567890")
huge = Decimal(2) ** 200
specials = [Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN123"), Decimal("0E-7"), Decimal("-0")]
print(f"started pid={os.getpid()}", flush=True)
total = Decimal(0)
for round_ in range(80):
    time.sleep(0.01)
    total += price
    start += step
    print(f"round {round_} {start.isoformat()} {total} pid={os.getpid()}", flush=True)
print(start, aware, aware.utcoffset(), aware.tzname(), utc.tzinfo is dt.timezone.utc, folded.fold, flush=True)
print(day, day + dt.timedelta(days=1), alarm, alarm.utcoffset(), step, step * 2, flush=True)
print(price, tiny, huge, [str(s) for s in specials], Decimal(1) / Decimal(7), total / 3, flush=True)
print(f"done pid={os.getpid()}", flush=True)
