"""sqlite3 in flight: a file database opened with detect_types (dates come back as
dates) and an isolation level, an in-memory database with rows, and a cursor kept in a
variable (test_teleport checks that a teleport inside a transaction is refused)."""
import datetime
import os
import sqlite3
import tempfile
from pyteleport import tp_dummy


def main():
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "jobs.db")
    db = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES, isolation_level="IMMEDIATE")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, day DATE, score REAL)")
    db.executemany("INSERT INTO runs(day, score) VALUES (?, ?)", [(datetime.date(2024, 1, d), d * 1.5) for d in range(1, 6)])
    memory = sqlite3.connect(":memory:")
    memory.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
    memory.executemany("INSERT INTO kv VALUES (?, ?)", [("a", 1), ("b", 2)])
    memory.commit()
    cursor = db.cursor()
    cursor.arraysize = 3
    db.commit()
    tp_dummy()
    cursor.execute("SELECT day, score FROM runs ORDER BY id")
    rows = cursor.fetchmany()
    print(rows, type(rows[0][0]).__name__, cursor.arraysize)
    db.execute("INSERT INTO runs(day, score) VALUES (?, ?)", (datetime.date(2024, 2, 1), 99.0))
    db.commit()
    print(db.execute("SELECT count(*), sum(score) FROM runs").fetchone(), db.isolation_level)
    print(memory.execute("SELECT k, v FROM kv ORDER BY k").fetchall())
    db.close()
    memory.close()
    os.remove(path)
    os.rmdir(folder)


main()
