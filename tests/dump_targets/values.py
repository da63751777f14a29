"""One frame holding a local of every type `dump` decodes, and module globals
with a few more; the frame parks while handling an exception."""
import json
import os
import sys
import time

import _selfreport

sys.set_int_max_str_digits(0)

GLOBAL_LIST = [1, "two", 3.0]
GLOBAL_NONE = None
GLOBAL_BIG = -(10 ** 400) - 7


class Plain:
    def method(self):
        return self


class WithSlots:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = "bee"


class CustomError(Exception):
    pass


def helper():
    return 42


def values():
    # None, bool
    none = None
    true = True
    false = False
    # int
    zero = 0
    minus_one = -1
    digit_edge = 2 ** 30 - 1
    two_digits = 2 ** 30
    int64_min = -2 ** 63
    uint64_max = 2 ** 64 - 1
    googol = 10 ** 100
    huge = int("7" * 5001) * 3 + 1
    huge_negative = -(2 ** 20000)
    # float
    pi = 3.141592653589793
    tenth = 0.1
    third = 1 / 3
    neg_zero = -0.0
    pos_inf = float("inf")
    neg_inf = float("-inf")
    not_a_number = float("nan")
    e16 = 1e16
    e15 = 123456789012345.0
    e22 = 1e22
    tiny = 5e-324
    small = 1e-5
    small_edge = 0.0001
    biggest = sys.float_info.max
    integral = 100.0
    # complex
    c_simple = 1 + 2j
    c_imag = 3j
    c_negzero = complex(-0.0, -0.0)
    c_special = complex(float("nan"), float("inf"))
    c_float = complex(1.5, -0.25)
    # str, every internal kind
    s_empty = ""
    s_ascii = "hello world"
    s_latin1 = "caf\xe9 \xff"
    s_latin1_np = "\x80\x9f\xa0\xad"
    s_ucs2 = "\u20acuro \u4e2d\u6587"
    s_ucs2_np = "\u2028\u200b\ufeff"
    s_astral = "smile \U0001f600"
    s_astral_np = "\U000e0001\U0010ffff"
    s_surrogate = "lone \ud800 and \udfff"
    s_quote_single = "it's"
    s_quote_double = 'say "hi"'
    s_quote_both = "both ' and \""
    s_escapes = "tab\tnl\ncr\rbs\\nul\x00del\x7fesc\x1b"
    s_long = "x" * 300
    # bytes, bytearray
    b_empty = b""
    b_ascii = b"bytes"
    b_binary = bytes(range(0, 256, 15))
    b_quotes = b"it's"
    b_both = b"'\""
    ba = bytearray(b"\x00ab\xff")
    ba_empty = bytearray()
    # containers
    t_empty = ()
    t_one = (1,)
    t_mixed = (1, "a", None, (2.5, [3]))
    l_empty = []
    l_nested = [1, [2, [3, []]], {"k": (4,)}]
    d_empty = {}
    d_mixed = {"a": 1, 2: "b", (3, 4): [5], None: True}
    d_churned = {i: i * i for i in range(12)}
    del d_churned[3]
    del d_churned[7]
    d_churned[3] = "re-added"
    set_empty = set()
    set_ints = {1, 2, 3, 100, -5}
    set_mixed = {"alpha", "beta", 7, (1, 2)}
    set_churned = set(range(20))
    set_churned.discard(5)
    set_churned.discard(13)
    fs_empty = frozenset()
    fs_items = frozenset({"x", 1})
    # recursive containers
    rec_list = []
    rec_list.append(rec_list)
    rec_dict = {}
    rec_dict["self"] = rec_dict
    rec_a = [1]
    rec_b = {"a": rec_a}
    rec_a.append(rec_b)
    rec_tuple = ([],)
    rec_tuple[0].append(rec_tuple)
    # subclasses of builtins without their own __repr__: the builtin's repr
    class D(dict):
        pass

    class S(set):
        pass

    class F(frozenset):
        pass

    class BA(bytearray):
        pass

    class C(complex):
        pass

    class L(list):
        pass

    sub_dict = D(a=1, b=[2])
    sub_set = S({3})
    sub_set_empty = S()
    sub_frozen = F({4})
    sub_bytearray = BA(b"y\x00")
    sub_complex = C(1, -2)
    sub_list_rec = L()
    sub_list_rec.append(sub_list_rec)
    if sys.version_info >= (3, 15):
        # 3.15's builtin frozendict, and a subclass (named in its repr)
        class FD(frozendict):  # noqa: F821 (a builtin from 3.15 on)
            pass

        fd_empty = frozendict()  # noqa: F821
        fd_items = frozendict(a=1, b=[2, frozendict(c=3)])  # noqa: F821
        sub_frozendict = FD(x=1)
    # floats whose shortest digits are a tie between two candidates; a repr over 1 MiB
    float_tie = 1000000000000000.25
    float_tie_neg = -887777373534812.25
    many_floats = [i / 7 for i in range(100_000)]
    # code points repr() escapes although they are not controls: unassigned, noncharacter
    unassigned = "\u0378\U0003ffff|\U000e0100"
    # instances without __repr__
    plain = Plain()
    slotted = WithSlots()

    class Local:
        pass

    local_instance = Local()
    instance_dict = vars(plain)
    plain.attr = "set later"
    # functions, methods, classes, modules
    function = helper
    lam = lambda q: q
    def nested_function():
        return lam
    bound = plain.method
    builtin = len
    builtin_mod_func = time.sleep
    builtin_method = l_empty.append
    cls_user = Plain
    cls_local = Local
    cls_builtin = int
    cls_exc = ValueError
    mod_builtin = sys
    mod_frozen = os
    mod_file = json
    # exceptions
    exc_value = ValueError("bad value", 2)
    exc_key = KeyError("k")
    exc_os = OSError(2, "No such file")
    exc_empty = RuntimeError()
    exc_custom = CustomError("custom", [1])
    try:
        raise LookupError("being handled")
    except LookupError as handled:
        _selfreport.start(1)
        time.sleep(3600)


if __name__ == "__main__":
    values()
