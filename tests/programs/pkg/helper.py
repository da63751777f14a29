"""A sibling module whose state the program changes before teleporting."""
calls = []
settings = {"scale": 1}
LIMIT = 10


def record(value):
    calls.append(value)
    return value * settings["scale"]
