"""Console entry points: run the bundled Rust binary (as py-spy ships its own)."""
import os
import sys

from . import binary_path


def main():
    exe = binary_path()
    os.execv(exe, [exe] + sys.argv[1:])


def main_attach():
    exe = binary_path()
    os.execv(exe, [exe, "attach"] + sys.argv[1:])
