"""Checks of pyteleport.restore's pure functions, run inside each supported interpreter
(its venv has no pytest): `python restore_unit_checks.py` runs every `check_*` and prints
one JSON object {name: null on success, or the traceback}. tests/test_restore_unit.py
runs it per version."""
import dis
import json
import os
import sys
import traceback
import types


def _sample():
    def f(a, *args, b=1, **kw):
        x = a
        try:
            x = x + 1
        except ValueError:
            x = 0
        with open(__file__) as fh:
            x += len(fh.name)
        return x, args, kw
    return f.__code__


def _table(code):
    from pyteleport import _native
    return _native.parse_exception_table(code.co_exceptiontable)


def check_parse_exception_table_matches_dis():
    code = _sample()
    ours = [(s, e, t, d, l) for s, e, t, d, l in _table(code)]
    theirs = [(x.start // 2, x.end // 2, x.target // 2, x.depth, x.lasti) for x in dis.Bytecode(code).exception_entries]
    assert ours == theirs, (ours, theirs)
    assert ours, "the sample has handlers"


def check_shift_exception_table_moves_every_entry():
    from pyteleport import restore
    code = _sample()
    shifted = restore._shift_exception_table(code.co_exceptiontable, restore.PROLOGUE)
    from pyteleport import _native
    before, after = _table(code), _native.parse_exception_table(shifted)
    assert [(s + 4, e + 4, t + 4, d, l) for s, e, t, d, l in before] == after, (before, after)
    assert restore._shift_exception_table(b"", 4) == b""
    assert restore._shift_exception_table(code.co_exceptiontable, 0) == code.co_exceptiontable


def check_resumable_makes_a_parameterless_generator():
    from pyteleport import restore
    code = _sample()
    r = restore.resumable(code)
    assert r.co_flags & restore.CO_GENERATOR
    assert not r.co_flags & (restore.CO_VARARGS | restore.CO_VARKEYWORDS)
    assert (r.co_argcount, r.co_posonlyargcount, r.co_kwonlyargcount) == (0, 0, 0)
    assert r.co_code[2 * restore.PROLOGUE:] == code.co_code
    assert r.co_stacksize == code.co_stacksize + 1
    ops = [i.opname for i in dis.get_instructions(r)][:4]
    assert ops[:2] == ["RETURN_GENERATOR", "POP_TOP"], ops
    # Calling it makes a generator that has not run; the jump target is in the prologue.
    g = types.FunctionType(r, {}, "f")()
    assert isinstance(g, types.GeneratorType)
    j = restore.resumable(code, jump_to=0x1234)
    assert j.co_code[4:8] == bytes([dis.opmap["EXTENDED_ARG"], 0x12, dis.opmap["JUMP_FORWARD"], 0x34])
    try:
        restore.resumable(code, jump_to=0x10000)
    except restore.RestoreError:
        pass
    else:
        raise AssertionError("a resume offset past 16 bits is refused")


def check_parameterless_keeps_the_code():
    from pyteleport import restore
    code = _sample()
    p = restore._parameterless(code)
    assert p.co_code == code.co_code and p.co_exceptiontable == code.co_exceptiontable
    assert (p.co_argcount, p.co_posonlyargcount, p.co_kwonlyargcount) == (0, 0, 0)
    assert not p.co_flags & (restore.CO_VARARGS | restore.CO_VARKEYWORDS)
    assert p.co_varnames == code.co_varnames


def check_flags_are_the_interpreters():
    import inspect
    from pyteleport import restore
    assert (restore.CO_VARARGS, restore.CO_VARKEYWORDS, restore.CO_GENERATOR) == (
        inspect.CO_VARARGS, inspect.CO_VARKEYWORDS, inspect.CO_GENERATOR)
    # co_localspluskinds is not visible from Python: the values are CPython's (3.11-3.13).
    from pyteleport import _native
    assert restore.CO_FAST_LOCAL is _native.CO_FAST_LOCAL
    assert (restore.CO_FAST_LOCAL, restore.CO_FAST_CELL, restore.CO_FAST_FREE) == (0x20, 0x40, 0x80)


def check_frame_states_name_created_and_suspended():
    from pyteleport import restore
    def g():
        yield 1
        yield 2
    gen = g()
    # The state numbers are the interpreter's own: a created generator's gi_frame_state
    # is not visible from Python, but GEN_CREATED/GEN_SUSPENDED follow them.
    import inspect
    assert inspect.getgeneratorstate(gen) == "GEN_CREATED"
    names = set(restore.STATES.values())
    assert {"created", "suspended"} <= names
    assert ("suspended_yield_from" in names) == (sys.version_info >= (3, 13)), restore.STATES
    assert len(restore.STATES) == len(names)


def check_resolve_follows_qualnames():
    from pyteleport import restore
    import collections
    assert restore._resolve("collections", "OrderedDict") is collections.OrderedDict
    assert restore._resolve("collections", "OrderedDict.fromkeys") == collections.OrderedDict.fromkeys
    assert restore._resolve("os.path", "join") is __import__("os").path.join
    for module, qual, exc in (("collections", "Nope", AttributeError), ("no_such_module_xyz", "x", ImportError)):
        try:
            restore._resolve(module, qual)
        except exc:
            pass
        else:
            raise AssertionError((module, qual))


def check_unnamed_builtin_types():
    from pyteleport import restore
    t = restore._UNNAMED_BUILTIN_TYPES
    assert t["NoneType"] is type(None) and t["ellipsis"] is type(...)
    assert t["function"] is types.FunctionType and t["generator"] is types.GeneratorType
    assert all(v.__module__ == "builtins" for v in t.values())


def check_enum_helpers():
    import enum
    from pyteleport import restore
    assert restore._is_enum_type(enum.EnumType) and restore._is_enum_type(type(enum.IntFlag))
    assert not restore._is_enum_type(type) and not restore._is_enum_type(None)
    assert restore._is_enum_sunder("_order_") and restore._is_enum_sunder("_ignore_")
    for key in ("_missing_", "_generate_next_value_", "__init__", "_x", "x_", "__", "_"):
        assert not restore._is_enum_sunder(key), key
    class Color(enum.Enum):
        RED = 1
        def describe(self):
            return self.name
    own = set(vars(Color)) - {"RED", "describe", "__module__", "__qualname__", "__doc__"}
    # Everything else EnumType keeps in the namespace is bookkeeping or a sunder name.
    hooks = {"_missing_", "_generate_next_value_"}  # kept on purpose: user-overridable
    extra = {k for k in own - hooks if k not in restore._ENUM_BOOKKEEPING and not restore._is_enum_sunder(k)
             and not (k.startswith("__") and k.endswith("__"))}
    assert not extra, extra


def check_strip_traceback_drops_the_engines_frames():
    from pyteleport import restore
    def user():
        raise ValueError("x")
    try:
        exec(compile("user()", restore.__file__, "exec"), {"user": user})
    except ValueError as e:
        exc = restore._strip_traceback(e)
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert restore.__file__ not in names and names, names


def check_read_snapshot_pipe_uses_the_header():
    import os
    from pyteleport import _native, restore
    body = b"x" * 100
    header = bytearray(b"PYTELEPT" + _native.FORMAT_VERSION.to_bytes(4, "little") + bytes([sys.version_info[0], sys.version_info[1], 0, 0])
                       + b"\0\0\0\0" + len(body).to_bytes(8, "little") + b"\0\0\0\0")
    assert len(header) == _native.HEADER_LEN
    h = _native.parse_header(header)
    assert (h.body_len, h.python[:2], h.format_version) == (100, tuple(sys.version_info[:2]), _native.FORMAT_VERSION)
    r, w = os.pipe()
    os.write(w, bytes(header) + body + b"trailing")
    os.close(w)
    got = restore._read_snapshot_pipe(r)
    os.close(r)
    # The body as the header says, then what follows it (an authentication trailer; the
    # decoder refuses anything else).
    assert bytes(got) == bytes(header) + body + b"trailing"
    for bad in (b"NOTASNAP" + bytes(24), b"short"):
        r, w = os.pipe()
        os.write(w, bad + b"rest")
        os.close(w)
        got = restore._read_snapshot_pipe(r)
        os.close(r)
        assert bytes(got) == bad + b"rest", got
    try:
        _native.parse_header(b"NOTASNAP" + bytes(24))
    except ValueError as e:
        assert "magic" in str(e)
    else:
        raise AssertionError("bad magic accepted")


def check_driver_is_registered():
    from pyteleport import _native, restore
    assert getattr(sys, _native.RESTORE_DRIVER_KEY) is restore._drive.__code__
    assert _native.DRIVER_PENDING_LOCAL in restore._drive.__code__.co_varnames


def check_resumed_sys_path_takes_this_sides_pythonpath():
    import tempfile
    from pyteleport.restore import _resumed_sys_path
    with tempfile.TemporaryDirectory() as d:
        mine, other, gone = os.path.join(d, "mine"), os.path.join(d, "other"), os.path.join(d, "gone")
        os.mkdir(mine)
        os.mkdir(other)
        ver = "%d.%d" % sys.version_info[:2]
        std = [p for p in sys.path if p.endswith(("/python" + ver.replace(".", "") + ".zip", "/python" + ver, "/lib-dynload"))]
        assert std, sys.path
        carried = [gone, mine] + std + ["/site"]
        # Before the standard library (where Python puts PYTHONPATH), absent or carried ones left out.
        got = _resumed_sys_path(carried, sys.path, os.pathsep.join([other, gone, mine, "", other]))
        assert got == [mine, other] + std, got
        assert _resumed_sys_path(carried, sys.path) == [mine] + std, "no PYTHONPATH: the carried path"
        assert _resumed_sys_path([mine], [], other) == [mine, other], "no standard library entry: at the end"


def main():
    sys.path.insert(0, "")
    results = {}
    for name, fn in list(globals().items()):
        if name.startswith("check_") and callable(fn):
            try:
                fn()
                results[name] = None
            except BaseException:
                results[name] = traceback.format_exc()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
