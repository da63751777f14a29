from pyteleport import tp_dummy
x = 5
counter = 0
def bump():
    global counter
    counter += 1
bump()
tp_dummy()
bump()
print(x, counter)
