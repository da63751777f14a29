"""Each function is suspended inside a `for` loop (over a range, a list iterator
held in a local, dict.items(), enumerate, zip, a comprehension) while calling the
next one, so every frame has a loop iterator on its value stack."""
import sys
import time

import _selfreport

# qualname -> what must be on that frame's value stack
EXPECT_STACK = {
    "over_range": [{"type": "range_iterator"}],
    "over_list": [{"type": "list_iterator", "local": "it"}],
    "over_items": [{"type": "dict_itemiterator"}],
    "over_enumerate": [{"type": "enumerate", "local": "en"}],
    "over_zip": [{"type": "zip"}],
    "innermost": [{"type": "range_iterator"}],
    # 3.15 walks a list or tuple in place: the list and its index (a tagged int, no object)
    "over_sequence": [{"type": "list_iterator"}] if sys.version_info < (3, 15) else [{"type": "list"}, {"type": "int"}],
}


def innermost(limit):
    acc = []
    for step in range(limit):
        acc.append(step)
        if step == 2:
            _selfreport.start(1, {"stack": EXPECT_STACK})
            time.sleep(3600)
    return acc


def over_zip(pairs):
    for left, right in zip("abc", pairs):
        if right == 2:
            return [innermost(n) for n in (5,)]
    return None


def over_enumerate(words):
    en = enumerate(words, start=100)
    for index, word in en:
        if word == "second":
            return over_zip([1, 2, 3])
    return None


def over_items(mapping):
    for key, value in mapping.items():
        if key == "b":
            return over_enumerate(["first", "second", "third"])
    return None


def over_list(items):
    it = iter(items)
    for item in it:
        if item > 20:
            return over_items({"a": 1, "b": 2, "c": 3})
    return None


def over_sequence(items):
    for item in items:
        if item == "b":
            return over_list([10, 20, 30, 40])
    return None


def over_range():
    for i in range(5, 100, 7):
        if i > 10:
            return over_sequence(["a", "b", "c"])
    return None


if __name__ == "__main__":
    over_range()
