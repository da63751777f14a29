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
