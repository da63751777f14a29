"""Ingest sensor readings into SQLite in batches and report per-sensor aggregates (jobs: external-state: removes its files at the end)."""
import os
import random
import sqlite3
import tempfile
import time

SCHEMA = """
CREATE TABLE readings (
    id INTEGER PRIMARY KEY,
    sensor TEXT NOT NULL,
    ts INTEGER NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX idx_sensor ON readings(sensor);
"""


def readings(rnd, n):
    sensors = [f"s{i:02d}" for i in range(12)]
    level = {s: rnd.uniform(10, 30) for s in sensors}
    for ts in range(n):
        s = rnd.choice(sensors)
        level[s] += rnd.gauss(0, 0.5)
        yield s, 1_700_000_000 + ts, round(level[s], 4)


def main():
    tmp = tempfile.mkdtemp(prefix="ingest-")
    db_path = os.path.join(tmp, "sensors.db")
    conn = sqlite3.connect(db_path)
    conn.executescript(SCHEMA)
    rnd = random.Random(2024)
    batch, batch_no = [], 0
    for row in readings(rnd, 24000):
        batch.append(row)
        if len(batch) == 500:
            conn.executemany("INSERT INTO readings(sensor, ts, value) VALUES (?, ?, ?)", batch)
            conn.commit()
            batch_no += 1
            (count,) = conn.execute("SELECT COUNT(*) FROM readings").fetchone()
            print(f"batch {batch_no:02d}: total rows {count}", flush=True)
            batch.clear()
            time.sleep(0.08)
    if batch:
        conn.executemany("INSERT INTO readings(sensor, ts, value) VALUES (?, ?, ?)", batch)
        conn.commit()
    for sensor, n, avg, lo, hi in conn.execute(
            "SELECT sensor, COUNT(*), AVG(value), MIN(value), MAX(value) FROM readings GROUP BY sensor ORDER BY sensor"):
        print(f"{sensor}: n={n} avg={avg:.3f} min={lo:.3f} max={hi:.3f}")
    (total,) = conn.execute("SELECT ROUND(SUM(value), 2) FROM readings").fetchone()
    conn.close()
    os.remove(db_path)
    os.rmdir(tmp)
    print(f"result: rows={batch_no * 500} sum={total}")


if __name__ == "__main__":
    main()
