"""In-memory files across the move: a StringIO being appended to (a report built
line by line), one read from the middle, a BytesIO written and sought, closed ones."""
import io
import os
import time

report = io.StringIO()
report.write("header\n")
reader = io.StringIO("alpha\nbeta\ngamma\ndelta\n", newline=None)
reader.readline()
packet = io.BytesIO()
packet.write(b"\x00\x01\x02")
finished = io.StringIO("x")
finished.close()
gone = io.BytesIO(b"y")
gone.close()
report.note = "kept"
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    report.write(f"row {round_} é{'ü' * (round_ % 3)}\n")
    packet.write(bytes([round_]))
    if round_ == 20:
        packet.seek(1)
        packet.write(b"\xff")
        packet.seek(0, 2)
    print(f"round {round_} {reader.readline().strip() or '-'} pid={os.getpid()}", flush=True)
text = report.getvalue()
print(len(text), text.splitlines()[:2], text.splitlines()[-1], report.tell(), report.note, flush=True)
report.seek(0)
print(report.readline().strip(), reader.tell(), packet.getvalue()[:6].hex(), packet.tell(), flush=True)
print(finished.closed, gone.closed, flush=True)
print(f"done pid={os.getpid()}", flush=True)
