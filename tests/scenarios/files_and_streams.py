import os, sys, tempfile
from pyteleport import tp_dummy
d = tempfile.mkdtemp(prefix="pyteleport-files-")
path = os.path.join(d, "data.txt")
with open(path, "w") as f:
    f.write("line1\nline2\nline3\n")
def main():
    reader = open(path)
    first = reader.readline()
    writer = open(os.path.join(d, "out.txt"), "w")
    writer.write("before ")
    out = sys.stdout
    tp_dummy()
    writer.write("after")
    writer.close()
    print(repr(first), repr(reader.readline()), out is sys.stdout, file=out)
    print(open(os.path.join(d, "out.txt")).read())
    reader.close()
main()
for name in os.listdir(d):
    os.unlink(os.path.join(d, name))
os.rmdir(d)


def redirected():
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print("inside, before")
        tp_dummy()
        print("inside, after")
    print("captured:", repr(buf.getvalue()))


redirected()


def iterated(lines):
    """A teleport inside `for line in f` over a text file (tell() is disabled there)."""
    home = tempfile.mkdtemp(prefix="pyteleport-iter-")
    text_path = os.path.join(home, "lines.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("".join(f"ligne {i} é\n" for i in range(lines)))
    seen = []
    with open(text_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == 3:
                tp_dummy()
            seen.append(line.split()[1])
    os.unlink(text_path)
    os.rmdir(home)
    print(len(seen), seen[:6], seen[-1])


iterated(5000)
