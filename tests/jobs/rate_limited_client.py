"""Paginated client for a (local, in-process) fake API with a client-side rate limit and retries."""
import json
import random
import time


class RateLimited(Exception):
    pass


class FakeAPI:
    """Stands in for a remote service: pages of orders, and a 429 now and then."""

    def __init__(self, seed, n_pages):
        self.rnd = random.Random(seed)
        self.n_pages = n_pages
        self.calls = 0

    def get(self, path, params):
        self.calls += 1
        if self.rnd.random() < 0.1:
            raise RateLimited("429 Too Many Requests")
        page = params["page"]
        rnd = random.Random(page)
        items = [{"id": page * 100 + i, "total": round(rnd.uniform(5, 250), 2)} for i in range(10)]
        nxt = page + 1 if page + 1 < self.n_pages else None
        return json.dumps({"path": path, "page": page, "items": items, "next": nxt})


def fetch_all(api, min_interval=0.05):
    page, delay = 0, min_interval
    while page is not None:
        time.sleep(delay * 1.0)
        try:
            payload = json.loads(api.get("/v1/orders", {"page": page}))
        except RateLimited as e:
            print(f"page {page}: {e}, backing off", flush=True)
            delay = min(delay * 2, 0.4)
            continue
        delay = min_interval
        yield payload["items"]
        page = payload["next"]


def main():
    api = FakeAPI(seed=11, n_pages=50)
    count, revenue = 0, 0.0
    for n, items in enumerate(fetch_all(api)):
        count += len(items)
        revenue += sum(it["total"] for it in items)
        if n % 5 == 0:
            print(f"page {n}: {count} orders so far, revenue {revenue:.2f}", flush=True)
    print(f"result: orders={count} revenue={revenue:.2f} calls={api.calls}")


if __name__ == "__main__":
    main()
