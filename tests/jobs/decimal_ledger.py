"""A ledger of accounts with compound interest, computed in 50-digit decimal arithmetic."""
import decimal
import random
import time
from decimal import Decimal

decimal.getcontext().prec = 50


def main():
    rnd = random.Random(8)
    accounts = {f"ACC{i:03d}": Decimal(rnd.randint(100, 10_000)) / 7 for i in range(40)}
    daily_rate = Decimal("0.0425") / Decimal(365)
    fees = Decimal(0)
    for day in range(1, 121):
        for name in accounts:
            accounts[name] += accounts[name] * daily_rate
        for _ in range(5):
            src, dst = rnd.sample(sorted(accounts), 2)
            amount = (accounts[src] / Decimal(rnd.randint(20, 60)))
            fee = amount * Decimal("0.001")
            accounts[src] -= amount + fee
            accounts[dst] += amount
            fees += fee
        if day % 10 == 0:
            total = sum(accounts.values())
            print(f"day {day:3d}: total={total} fees={fees}", flush=True)
        time.sleep(0.03)
    total = sum(accounts.values())
    print(f"richest: {max(accounts, key=accounts.get)} {max(accounts.values())}")
    print(f"result: total={total} fees={fees} digits={len(str(total).replace('.', ''))}")


if __name__ == "__main__":
    main()
