"""Files open across the move: a log written line by line (still buffered when the move
happens), a text file read with `for line in f`, a binary file read in chunks, an
append-mode file; all checked after being closed."""
import os
import sys
import tempfile
import time

work = tempfile.mkdtemp(prefix="pyteleport-files-")
os.chdir(work)
with open("input.txt", "w") as f:
    f.writelines(f"line {i} {'é' * (i % 3)}\n" for i in range(60))
with open("blob.bin", "wb") as f:
    f.write(bytes(range(256)) * 4)
with open("journal.txt", "w") as f:
    f.write("begin\n")

log = open("log.txt", "w")
source = open("input.txt", encoding="utf-8")
blob = open("blob.bin", "rb")
journal = open("journal.txt", "a")
print(f"started pid={os.getpid()}", flush=True)
for round_, line in enumerate(source):
    time.sleep(0.01)
    chunk = blob.read(7)
    log.write(f"{round_}: {line.strip()} {chunk.hex()}\n")
    if round_ % 10 == 0:
        journal.write(f"round {round_}\n")
    print(f"round {round_} {line.strip()} pid={os.getpid()}", flush=True)
    if round_ == 44:
        break
rest = source.read()
log.close()
journal.close()
source.close()
tail = blob.read()
blob.close()
with open("log.txt") as f:
    logged = f.read().splitlines()
print(len(logged), logged[0], logged[-1], flush=True)
print(rest.count("\n"), rest.splitlines()[0], len(tail), tail[:4].hex(), flush=True)
print(open("journal.txt").read().split(), source.closed, log.closed, flush=True)
for name in ("input.txt", "blob.bin", "journal.txt", "log.txt"):
    os.remove(name)
os.rmdir(work)
print(f"done pid={os.getpid()}", flush=True)
sys.exit(0)
