from pyteleport import tp_dummy
def inner(x):
    y = x * 2
    tp_dummy()
    return y + 1
def middle(x):
    return 10 + inner(x) * 3
def outer():
    total = 0
    for i in range(3):
        total += middle(i) if i == 1 else i
    return total
print(outer())
