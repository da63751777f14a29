"""datetime, timedelta, timezone and Decimal values across a teleport."""
import datetime as dt
from decimal import Decimal

from pyteleport import tp_dummy


def ledger():
    when = dt.datetime(2024, 1, 31, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2), "CEST"))
    folded = dt.datetime(2021, 11, 7, 1, 30, fold=1)
    due = dt.date(2024, 2, 29)
    at = dt.time(23, 59, 59, 999999)
    gap = dt.timedelta(weeks=-1, microseconds=5)
    amounts = [Decimal("0.10"), Decimal("-7.5E+3"), Decimal("Infinity"), Decimal(3) ** 100]
    utc_now = dt.datetime(2020, 5, 5, tzinfo=dt.timezone.utc)
    tp_dummy()
    print(when, when.tzname(), folded.fold, due, at, gap, amounts, sum(amounts[:2]))
    print(utc_now.tzinfo is dt.timezone.utc, when + gap, due.weekday())


ledger()
