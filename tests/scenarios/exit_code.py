import sys
from pyteleport import tp_dummy
def main():
    tp_dummy()
    print("exiting with 3")
    sys.exit(3)
main()
