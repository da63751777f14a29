"""Console entry points: run the bundled Rust binary (as py-spy ships its own)."""
import os
import sys

from . import TeleportError, binary_path


def _exec(args):
    try:
        exe = binary_path()
    except TeleportError as e:
        print(f"pyteleport: error: {e}", file=sys.stderr)
        sys.exit(1)
    os.execv(exe, [exe] + args)


def main():
    _exec(sys.argv[1:])


def main_attach():
    _exec(["attach"] + sys.argv[1:])
