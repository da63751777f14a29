"""Convert a CSV export to JSON lines, validating and summarising as it streams (jobs: external-state: removes its files at the end)."""
import csv
import json
import os
import random
import sys
import tempfile
import time


def write_export(path, n, seed=99):
    rnd = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "email", "country", "amount", "active"])
        for i in range(n):
            name = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(4, 9)))
            country = rnd.choice(["DE", "FR", "US", "JP", "BR", ""])
            amount = f"{rnd.uniform(-5, 500):.2f}" if rnd.random() > 0.02 else "n/a"
            w.writerow([i, name.title(), f"{name}@example.org", country, amount, rnd.choice(["yes", "no"])])


def main():
    tmp = tempfile.mkdtemp(prefix="csvjson-")
    src = os.path.join(tmp, "export.csv")
    dst = os.path.join(tmp, "export.jsonl")
    write_export(src, 3000)
    stats = {"ok": 0, "rejected": 0, "by_country": {}}
    with open(src, newline="") as fin, open(dst, "w") as fout:
        reader = csv.reader(fin)
        header = next(reader)
        for lineno, row in enumerate(reader, start=2):
            rec = dict(zip(header, row))
            try:
                rec["id"] = int(rec["id"])
                rec["amount"] = float(rec["amount"])
                rec["active"] = rec["active"] == "yes"
                if not rec["country"]:
                    raise ValueError("missing country")
            except ValueError as e:
                stats["rejected"] += 1
                print(f"line {lineno}: rejected ({e})", file=sys.stderr)
                continue
            stats["ok"] += 1
            stats["by_country"][rec["country"]] = stats["by_country"].get(rec["country"], 0) + 1
            fout.write(json.dumps(rec, sort_keys=True) + "\n")
            if lineno % 250 == 0:
                print(f"progress {lineno}: ok={stats['ok']} rejected={stats['rejected']}", flush=True)
            time.sleep(0.001)
    with open(dst) as f:
        n_lines = sum(1 for _ in f)
    size = os.path.getsize(dst)
    os.remove(src)
    os.remove(dst)
    os.rmdir(tmp)
    print(json.dumps(stats, sort_keys=True))
    print(f"result: jsonl_lines={n_lines} bytes={size}")


if __name__ == "__main__":
    main()
