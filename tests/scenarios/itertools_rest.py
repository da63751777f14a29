"""itertools objects half consumed across a teleport."""
import itertools

from pyteleport import tp_dummy


def run():
    c = itertools.cycle("abc")
    first_pass = itertools.cycle(iter([1, 2, 3, 4]))
    ch = itertools.chain("xy", [1, 2], range(3))
    sl = itertools.islice(range(100), 2, 50, 5)
    rp = itertools.repeat(7, 4)
    acc = itertools.accumulate([1, 2, 3, 4, 5])
    fresh = itertools.accumulate([1, 2], initial=100)
    got = [next(c), next(c), next(c), next(c), next(first_pass), next(ch), next(ch), next(ch), next(sl), next(rp), next(acc), next(acc)]
    tp_dummy()
    return got, [next(c) for _ in range(4)], [next(first_pass) for _ in range(6)], list(ch), list(sl), list(rp), list(acc), list(fresh)


print(run())
