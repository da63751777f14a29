"""Async crawler over a fake site: bounded concurrency with a semaphore, asyncio.sleep for latency."""
import asyncio
import hashlib
import random


class FakeSite:
    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.pages = {f"/page/{i}": [f"/page/{(i * 7 + k) % 400}" for k in range(3)] for i in range(400)}

    async def fetch(self, url):
        await asyncio.sleep(0.01 + (int(url.rsplit('/', 1)[1]) % 5) * 0.002)
        links = self.pages[url]
        body = f"<html>{url}</html>" + "".join(f"<a href='{l}'>" for l in links)
        return body, links


async def worker(name, site, queue, seen, results, sem):
    while True:
        url = await queue.get()
        try:
            async with sem:
                body, links = await site.fetch(url)
            results[url] = hashlib.md5(body.encode()).hexdigest()[:8]
            if len(results) % 25 == 0:
                print(f"crawled {len(results)} pages", flush=True)
            for link in links:
                if link not in seen:
                    seen.add(link)
                    await queue.put(link)
        finally:
            queue.task_done()


async def main():
    site = FakeSite(3)
    queue = asyncio.Queue()
    seen = {"/page/0"}
    results = {}
    await queue.put("/page/0")
    sem = asyncio.Semaphore(2)
    workers = [asyncio.create_task(worker(f"w{i}", site, queue, seen, results, sem)) for i in range(4)]
    await queue.join()
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    digest = hashlib.sha256("".join(results[k] for k in sorted(results)).encode()).hexdigest()[:16]
    print(f"result: pages={len(results)} digest={digest}")


if __name__ == "__main__":
    asyncio.run(main())
