from pyteleport import tp_dummy, TeleportError
def key(v):
    if v == 2:
        try:
            tp_dummy()
        except TeleportError as e:
            print("refused:", "key" in str(e), "sorted" in str(e))
    return -v
print(sorted([1, 2, 3], key=key))
print("original goes on")
