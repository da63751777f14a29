"""An ETL job: reads a CSV file row by row with csv.reader and writes a transformed CSV
with csv.writer (both in flight at the move), then prints the output file."""
import csv
import os
import sys
import tempfile
import time

folder = tempfile.mkdtemp()
source = os.path.join(folder, "in.csv")
target = os.path.join(folder, "out.csv")
with open(source, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "name", "amount"])
    for i in range(60):
        w.writerow([i, f"name {i}" if i % 7 else f'quoted "{i}", with comma', i * 1.5])
print(f"started pid={os.getpid()}", flush=True)
with open(source, newline="") as f, open(target, "w", newline="") as out:
    reader = csv.reader(f)
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(next(reader))
    total = 0.0
    for row in reader:
        time.sleep(0.01)
        total += float(row[2])
        writer.writerow([row[0], row[1].title(), f"{float(row[2]):.2f}"])
        print(row[0], reader.line_num, f"pid={os.getpid()}", flush=True)
with open(target) as f:
    sys.stdout.write(f.read())
print("total", total, flush=True)
