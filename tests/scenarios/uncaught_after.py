from pyteleport import tp_dummy
def fail(n):
    tp_dummy()
    return 10 // n
def main():
    print("start")
    return fail(0)
main()
