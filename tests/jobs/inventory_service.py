"""An inventory service loop: dataclasses for items and orders, dict indexes, an event log."""
import random
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List


class Status(Enum):
    OPEN = "open"
    FILLED = "filled"
    BACKORDERED = "backordered"


@dataclass
class Item:
    sku: str
    name: str
    stock: int
    price_cents: int
    tags: List[str] = field(default_factory=list)


@dataclass
class Order:
    order_id: int
    lines: Dict[str, int]
    status: Status = Status.OPEN


@dataclass
class Inventory:
    items: Dict[str, Item] = field(default_factory=dict)
    events: List[tuple] = field(default_factory=list)

    def restock(self, sku, qty):
        self.items[sku].stock += qty
        self.events.append(("restock", sku, qty))

    def fill(self, order):
        if all(self.items[s].stock >= q for s, q in order.lines.items()):
            for s, q in order.lines.items():
                self.items[s].stock -= q
            order.status = Status.FILLED
        else:
            order.status = Status.BACKORDERED
        self.events.append(("order", order.order_id, order.status.value))
        return order.status


def main():
    rnd = random.Random(404)
    inv = Inventory()
    for i in range(60):
        inv.items[f"SKU{i:04d}"] = Item(f"SKU{i:04d}", f"item-{i}", rnd.randint(0, 50), rnd.randint(99, 9999),
                                       tags=rnd.sample(["red", "blue", "xl", "eco", "sale"], 2))
    orders: List[Order] = []
    revenue = 0
    for tick in range(200):
        order = Order(tick, {rnd.choice(list(inv.items)): rnd.randint(1, 5) for _ in range(rnd.randint(1, 4))})
        if inv.fill(order) is Status.FILLED:
            revenue += sum(inv.items[s].price_cents * q for s, q in order.lines.items())
        orders.append(order)
        if tick % 7 == 0:
            low = min(inv.items.values(), key=lambda it: (it.stock, it.sku))
            inv.restock(low.sku, 20)
        if tick % 20 == 19:
            filled = sum(o.status is Status.FILLED for o in orders)
            print(f"tick {tick}: filled={filled}/{len(orders)} revenue={revenue / 100:.2f} events={len(inv.events)}",
                  flush=True)
        time.sleep(0.015)
    by_tag = {}
    for it in inv.items.values():
        for t in it.tags:
            by_tag[t] = by_tag.get(t, 0) + it.stock
    print("stock by tag:", dict(sorted(by_tag.items())))
    print(f"result: orders={len(orders)} revenue={revenue / 100:.2f} backorders="
          f"{sum(o.status is Status.BACKORDERED for o in orders)}")


if __name__ == "__main__":
    main()
