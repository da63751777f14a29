from pyteleport import tp_dummy
def main():
    blob = bytes(range(256)) * (100 * 1024 * 1024 // 256)
    floats = [i * 0.5 for i in range(200_000)]
    tp_dummy()
    print(len(blob), blob[12345], sum(floats))
main()
