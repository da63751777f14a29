"""StringIO and BytesIO half written and half read across a teleport."""
import io

from pyteleport import tp_dummy


def build():
    out = io.StringIO()
    out.write("first\n")
    src = io.StringIO("a\nb\nc\n")
    src.readline()
    raw = io.BytesIO(b"0123456789")
    raw.seek(4)
    shut = io.StringIO()
    shut.close()
    tp_dummy()
    out.write("second\n")
    return out.getvalue(), src.readline(), raw.read(3), raw.tell(), shut.closed


print(build())
