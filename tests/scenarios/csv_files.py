"""An ETL step in flight: a csv.reader part-way through an input file (its line number
too), a csv.writer appending to an output file, and a DictReader over an in-memory text."""
import csv
import io
import os
import tempfile
from pyteleport import tp_dummy


def main():
    folder = tempfile.mkdtemp()
    source = os.path.join(folder, "in.csv")
    target = os.path.join(folder, "out.csv")
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "amount"])
        for i in range(10):
            w.writerow([i, f"name {i}" if i != 4 else 'quote "x", and comma', i * 2.5])
    people = csv.DictReader(io.StringIO("a;b\n1;2\n3;4\n"), delimiter=";")
    first_person = next(people)
    with open(source, newline="") as f, open(target, "w", newline="") as out:
        reader = csv.reader(f)
        writer = csv.writer(out, delimiter="|", quoting=csv.QUOTE_NONNUMERIC)
        header = next(reader)
        writer.writerow(header)
        total = 0.0
        for row in reader:
            total += float(row[2])
            writer.writerow([int(row[0]), row[1].upper(), float(row[2])])
            if row[0] == "3":
                tp_dummy()
                print("line", reader.line_num, "dialect", repr(writer.dialect.delimiter))
        print("total", total, "last line", reader.line_num)
    print("people", first_person, list(people), people.line_num)
    with open(target) as f:
        print(f.read())


main()
