"""An ingest job: batches of rows written to a sqlite3 file database (opened with
detect_types), committed each batch, with a running count; a move must wait for a
moment between transactions and lose no row."""
import datetime
import os
import sqlite3
import tempfile
import time

folder = tempfile.mkdtemp()
path = os.path.join(folder, "ingest.db")
db = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES)
db.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, day DATE, value REAL)")
print(f"started pid={os.getpid()}", flush=True)
for batch in range(40):
    rows = [(datetime.date(2024, 1, 1) + datetime.timedelta(days=batch), batch * 10 + i * 0.5) for i in range(20)]
    db.executemany("INSERT INTO readings(day, value) VALUES (?, ?)", rows)
    time.sleep(0.01)  # the transaction stays open a while
    db.commit()
    count, last = db.execute("SELECT count(*), max(day) FROM readings").fetchone()
    print(f"batch {batch} rows {count} last {last} pid={os.getpid()}", flush=True)
    time.sleep(0.01)
day = db.execute("SELECT day FROM readings ORDER BY id DESC LIMIT 1").fetchone()[0]
print("type", type(day).__name__, "total", db.execute("SELECT round(sum(value), 2) FROM readings").fetchone()[0], flush=True)
db.close()
os.remove(path)
os.rmdir(folder)
print(f"done pid={os.getpid()}", flush=True)
