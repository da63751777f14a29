from pyteleport import tp_dummy
data = {"a": 1, "b": 2, "c": 3}
out = []
for k, v in data.items():
    if k == "b":
        tp_dummy()
    out.append((k, v))
def f():
    acc = []
    for i, (x, y) in enumerate(zip([1, 2, 3], "xyz")):
        if i == 1:
            tp_dummy()
        acc.append((i, x, y))
    for z in [10, 20, 30]:
        if z == 20:
            tp_dummy()
        acc.append(z)
    return acc
print(out, f())
