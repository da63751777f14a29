from pyteleport import tp_dummy
def star(*args, **kwargs):
    tp_dummy()
    return sum(args) + sum(kwargs.values())
def main():
    total = star(*[1, 2], **{"a": 3})
    squares = [x * x if x != 2 else (tp_dummy(), x * x)[1] for x in range(4)]
    table = {k: len(k) for k in ["ab", "c"]}
    print(total, squares, table, (lambda q: q + 1)(41))
main()
for i in range(3):
    if i == 1:
        tp_dummy()
    print("module loop", i)
