from pyteleport import tp_dummy
def gen(n):
    for i in range(n):
        yield i * i
def sub():
    yield 1
    yield 2
def deleg():
    yield 0
    yield from sub()
    yield 3
g = gen(5); next(g)
fresh = gen(3)
done = gen(1); list(done)
d = deleg(); next(d); next(d)
tp_dummy()
print(list(g), list(fresh), list(done), list(d))
def producer():
    for i in range(4):
        if i == 2:
            tp_dummy()
        yield i
print([x for x in producer()])
p = producer()
print(next(p), next(p), next(p), next(p))
