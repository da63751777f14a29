"""Rebuilding the captured objects (the `Rebuilder`) and making resumable code: the half
of the restore engine that runs before any frame is entered (see restore.py)."""

import builtins
import importlib
import opcode
import sys
import types

from . import _native

# One definition of each, in the Rust crate: code flags and local kinds
# (pyteleport::bytecode), this interpreter's generator states (its layout table).
from ._native import CO_VARARGS, CO_VARKEYWORDS, CO_GENERATOR, CO_FAST_LOCAL, CO_FAST_CELL, CO_FAST_FREE
from ._native import FRAME_STATES as STATES
NULL = object()
# Location-table entry "no location" covering 4 code units (PEP 626 format, kind 15).
NO_LOCATION_4 = bytes([0x80 | (15 << 3) | 3])


class RestoreError(RuntimeError):
    pass


# The exception-table parser and writer are the Rust reader's (pyteleport::bytecode).
_shift_exception_table = _native.shift_exception_table


PROLOGUE = 4  # code units added in front of a resumed function's code


def resumable(code, jump_to=0):
    """`code` with a prologue that makes calling it create a generator, and no
    parameters (the frame's slots are written directly). The prologue's tail jumps to
    `jump_to` (original offset): entering the frame right after RETURN_GENERATOR resumes
    it there with an empty value stack."""
    if jump_to > 0xFFFF:
        raise RestoreError(f"{code.co_qualname}: resume offset {jump_to} too large")
    op = opcode.opmap
    prologue = bytes([op["RETURN_GENERATOR"], 0, op["POP_TOP"], 0,
                      op["EXTENDED_ARG"], jump_to >> 8, op["JUMP_FORWARD"], jump_to & 0xFF])
    return code.replace(
        co_code=prologue + code.co_code,
        co_linetable=NO_LOCATION_4 + code.co_linetable,
        co_exceptiontable=_shift_exception_table(code.co_exceptiontable, PROLOGUE),
        co_flags=(code.co_flags | CO_GENERATOR) & ~(CO_VARARGS | CO_VARKEYWORDS),
        co_argcount=0, co_posonlyargcount=0, co_kwonlyargcount=0,
        co_stacksize=code.co_stacksize + 1,
    )


def _parameterless(code):
    return code.replace(co_flags=code.co_flags & ~(CO_VARARGS | CO_VARKEYWORDS),
                        co_argcount=0, co_posonlyargcount=0, co_kwonlyargcount=0)


def _resolve(module, qualname):
    alias = _TYPES_BY_OTHER_NAMES.get((module, qualname))
    if alias is not None:
        return alias()
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# C types whose module does not name them as their __qualname__ says (a method
# descriptor such as `lock.acquire` on a waiting thread's stack brings its type along).
_TYPES_BY_OTHER_NAMES = {
    ("_thread", "lock"): lambda: importlib.import_module("_thread").LockType,
    ("_thread", "RLock"): lambda: type(importlib.import_module("_thread").RLock()),
    ("_queue", "SimpleQueue"): lambda: importlib.import_module("_queue").SimpleQueue,
}


# Builtin types that `builtins` does not name (type(None), types.MethodType, ...).
_UNNAMED_BUILTIN_TYPES = {
    t.__name__: t for t in [*vars(types).values(), type(None), type(...), type(NotImplemented)]
    if isinstance(t, type) and t.__module__ == "builtins"
}


# What EnumType keeps in an Enum class's namespace besides members and methods.
_ENUM_BOOKKEEPING = frozenset({
    "_new_member_", "_use_args_", "_member_names_", "_member_map_", "_value2member_map_",
    "_unhashable_values_", "_unhashable_values_map_", "_member_type_", "_value_repr_",
    "_hashable_values_", "__new__",
})


def _is_enum_sunder(key):
    """Enum's own `_name_` settings, which the class statement may not set itself (user
    hooks such as `_missing_` and `_generate_next_value_` stay)."""
    return (len(key) > 2 and key[0] == key[-1] == "_" and key[1] != "_" and key[-2] != "_"
            and key not in ("_missing_", "_generate_next_value_"))


def _is_enum_type(metaclass):
    enum = sys.modules.get("enum")
    return enum is not None and isinstance(metaclass, type) and issubclass(metaclass, enum.EnumType)


class Rebuilder:
    """Turns the snapshot's object nodes back into objects, keeping identity and sharing."""

    def __init__(self, state, main_module):
        self.nodes = state.objects
        # Every thread's frames: a generator running in any thread is one of them.
        self.frames = list(state.frames) + [f for t in state.other_threads for f in t.frames]
        # Scalars and containers of scalars come built by the native module.
        self.objs = state.ready if state.ready is not None else [NULL] * len(self.nodes)
        self.to_fill = []
        self.filled = set()  # node ids whose contents are in place
        self.pending = set()  # node ids queued in to_fill
        self.generators = []
        self.main = main_module
        mm = state.main_module
        if mm is not None:
            self.objs[mm] = main_module
            v = self.nodes[mm].value
            if v.kind == "module" and v.dict is not None:
                self.objs[v.dict] = main_module.__dict__
                self.to_fill.append(v.dict)

    def forget(self):
        """Let go of every rebuilt object before the program runs: from then on only
        the program holds them, as in the original, so an object only this table kept
        alive goes (its weak references die and their callbacks run, `__del__` runs)
        when the program drops it, not at the end of the process. In place: the
        snapshot's list of ready objects is this same list."""
        self.objs[:] = []
        self.to_fill, self.generators, self.main = [], [], None
        self.filled, self.pending = set(), set()

    def type_name(self, i):
        t = self.nodes[i].type_id
        if t is None:
            return "?"
        v = self.nodes[t].value
        return f"{v.module}.{v.qualname}" if v.kind == "type" else "?"

    def get(self, i):
        if i is None:
            return None
        o = self.objs[i]
        if o is NULL:
            o = self.objs[i] = self.build(i)
        return o

    def full(self, i):
        """The object with its contents: for containers copied from, not just referenced."""
        o = self.get(i)
        if self.nodes[i].value.kind in ("list", "dict", "set"):
            self.fill(i)
        return o

    def deep(self, i):
        """An object handed to `__setstate__` and the like: every container it reaches
        through tuples, lists, dicts and sets filled, and objects rebuilt by reduce found
        there given their state (numpy's bit generators take `({...}, SeedSequence)`)."""
        if i is None:
            return None
        seen, todo, reduced = {i}, [i], []
        while todo:
            j = todo.pop()
            node = self.nodes[j].value
            if node.kind in ("list", "dict", "set"):
                self.get(j)
                self.fill(j)
            elif node.kind == "reduce":
                reduced.append(j)
                continue
            elif node.kind != "tuple":
                continue
            for c in node.items:
                if c is not None and c not in seen:
                    seen.add(c)
                    todo.append(c)
        for j in reduced:
            if self.get(j) is not NULL:
                self.fill(j)
        return self.get(i)

    def full_tuple(self, i):
        """A tuple of arguments about to be used, not just referenced: items filled."""
        if i is None:
            return ()
        node = self.nodes[i].value
        for item in (node.items if node.kind == "tuple" else ()):
            self.full(item)
        return self.get(i)

    def queue_fill(self, i):
        self.pending.add(i)
        self.to_fill.append(i)

    def hashable(self, i):
        """An object about to be hashed (a dict key, a set item): its own state first, as
        a user `__hash__` (a frozen dataclass) reads it."""
        o = self.get(i)
        node = self.nodes[i].value
        kind = node.kind
        if kind in ("instance", "reduce", "exception") and i not in self.filled and i in self.pending:
            self.fill(i)
        elif kind in ("tuple", "frozenset"):
            for x in node.items:
                self.hashable(x)
        return o

    def slot(self, i):
        return NULL if i is None else self.get(i)

    def build(self, i):
        v = self.nodes[i].value
        kind = v.kind
        if kind in ("int", "float", "str", "bytes", "bool"):
            return v.value
        if kind == "none":
            return None
        if kind == "ellipsis":
            return ...
        if kind == "notimplemented":
            return NotImplemented
        if kind == "object":
            return object()
        if kind == "reduce":
            obj = self.get(v.callable)(*self.deep(v.args))
            if v.state is not None or v.listitems is not None or v.dictitems is not None:
                self.queue_fill(i)
            return obj
        if kind == "stdio":
            return getattr(sys, v.name)
        if kind == "rebuilt":
            module, _, name = v.type_name.rpartition(".")
            maker = _resolve(module, name) if module else getattr(builtins, name)
            obj = maker(*(self.get(a) for a in v.args))
            if v.dict is not None:
                self.queue_fill(i)
            return obj
        if kind == "global":
            try:
                obj = getattr(importlib.import_module(v.module), v.name)
            except (ImportError, AttributeError) as e:
                raise RestoreError(f"{v.module}.{v.name} cannot be found: {e}") from None
            if v.state is not None:
                self.queue_fill(i)  # its state (a random generator's place in the sequence)
            return obj
        if kind == "descriptor":
            return vars(self.get(v.owner))[v.name]
        if kind == "complex":
            return complex(v.real, v.imag)
        if kind == "bytearray":
            return bytearray(v.value)
        if kind == "tuple":
            return tuple(self.get(x) for x in v.items)
        if kind == "frozenset":
            return frozenset(self.hashable(x) for x in v.items)
        if kind in ("list", "dict", "set"):
            self.queue_fill(i)
            return {"list": list, "dict": dict, "set": set}[kind]()
        if kind == "cell":
            self.queue_fill(i)
            return types.CellType()
        if kind == "module":
            module = importlib.import_module(v.name)
            if v.patches:
                self.to_fill.append(("patches", module, v.patches))
            return module
        if kind == "type":
            return self.build_type(i, v)
        if kind == "code":
            return self.build_code(v)
        if kind == "function":
            return self.build_function(v)
        if kind == "method":
            return types.MethodType(self.get(v.func), self.get(v.self_))
        if kind == "builtin":
            if v.self_ is None:
                return getattr(importlib.import_module(v.module or "builtins"), v.name)
            return getattr(self.get(v.self_), v.name)
        if kind == "range":
            return range(self.get(v.start), self.get(v.stop), self.get(v.step))
        if kind == "rangeiter":
            start, step, length, index = v.start, v.step, v.len, v.index
            start, length = start + index * step, length - index
            return iter(range(start, start + length * step, step))
        if kind == "seqiter":
            if v.seq is None:
                return iter(())
            seq = self.full(v.seq)  # the position is clamped to the current length
            it = iter(seq)
            it.__setstate__(v.index)
            return it
        if kind == "enumerate":
            return enumerate(self.get(v.iter), self.get(v.long_index) if v.long_index is not None else v.index)
        if kind == "zip":
            return zip(*self.get(v.iters), strict=v.strict)
        if kind == "dictiter":
            return self.build_dictiter(i, v)
        if kind == "exception":
            cls = self.get(self.nodes[i].type_id)
            self.queue_fill(i)
            # The builtin base reads its C fields from the arguments (SystemExit.code,
            # OSError.errno, StopIteration.value): make and initialise it with them.
            args = self.full_tuple(v.args)
            try:
                o = cls.__new__(cls, *args)
            except TypeError:
                o = cls.__new__(cls)
            base = next(b for b in cls.__mro__ if b.__module__ == "builtins")
            try:
                base.__init__(o, *args)
            except Exception:
                pass
            return o
        if kind == "instance":
            return self.build_instance(i, v)
        if kind == "generator":
            return self.build_generator(i, v)
        raise RestoreError(f"cannot rebuild a {self.type_name(i)} object: pyteleport cannot carry this type")

    def build_type(self, i, v):
        module, qualname, name, dict_id, bases, meta = v.module, v.qualname, v.name, v.dict, v.bases, v.metaclass
        if dict_id is None:
            try:
                cls = _resolve(module, qualname)
                if v.patches:
                    # Its state (a progress bar's monitor thread, lock, list of bars).
                    self.to_fill.append(("class_patches", cls, v.patches))
                return cls
            except (ImportError, AttributeError) as e:
                if module == "builtins" and qualname in _UNNAMED_BUILTIN_TYPES:
                    return _UNNAMED_BUILTIN_TYPES[qualname]
                raise RestoreError(f"class {module}.{qualname} cannot be found: {e}") from None
        base_objs = tuple(self.get(b) for b in bases) or (object,)
        metaclass = self.get(meta) if meta is not None else type
        enum_class = _is_enum_type(metaclass)
        # An Enum class is made by its metaclass from a namespace of member *values*
        # (which makes the members anew) and its methods, without the bookkeeping.
        ns = metaclass.__prepare__(name, base_objs) if enum_class else {}
        boundary = None
        for k, val in zip(*[iter(self.nodes[dict_id].value.items)] * 2):
            key = self.get(k)
            node = self.nodes[val].value
            # Descriptors the class owns (__dict__, __weakref__, slots) are made anew by type().
            if node.kind == "opaque" or (node.kind == "descriptor" and node.owner == i) or key == "_abc_impl":
                continue
            if enum_class:
                if key == "_boundary_":
                    boundary = self.get(val)
                if key in _ENUM_BOOKKEEPING or _is_enum_sunder(key):
                    continue
                if self.nodes[val].type_id == i and node.kind == "instance":
                    ns[key] = self.enum_value(node)
                    continue
            ns[key] = self.get(val)
        cls = metaclass(name, base_objs, ns, **({"boundary": boundary} if boundary is not None else {}))
        cls.__qualname__ = qualname
        return cls

    def build_code(self, c):
        names, kinds = c.localsplus_names, c.localsplus_kinds
        varnames = tuple(n for n, k in zip(names, kinds) if k & CO_FAST_LOCAL)
        cellvars = tuple(n for n, k in zip(names, kinds) if k & CO_FAST_CELL)
        freevars = tuple(n for n, k in zip(names, kinds) if k & CO_FAST_FREE)
        consts = tuple(self.get(x) for x in c.consts)
        return types.CodeType(
            c.argcount, c.posonlyargcount, c.kwonlyargcount, len(varnames), c.stacksize, c.flags,
            c.code, consts, tuple(c.names), varnames, c.filename, c.name, c.qualname,
            c.first_line, c.linetable, c.exceptiontable, freevars, cellvars)

    def module_dict(self, module_name):
        if module_name is None:
            return self.main.__dict__
        return importlib.import_module(module_name).__dict__

    def build_function(self, v):
        code, module_name, globals_module, kwdefaults, dict_id = v.code, v.module_name, v.globals_module, v.kwdefaults, v.dict
        qual = self.get(v.qualname)
        home = globals_module or module_name
        if home not in (None, "__main__") and "<locals>" not in qual:
            try:
                f = _resolve(home, qual)
                # The same function, not a wrapper that took its name (functools.wraps).
                if isinstance(f, types.FunctionType) and f.__code__.co_qualname == self.nodes[code].value.qualname:
                    return f
            except (ImportError, AttributeError):
                pass
        g = self.get(v.globals) if v.globals is not None else self.module_dict(home)
        f = types.FunctionType(self.get(code), g, self.get(v.name), self.get(v.defaults), self.get(v.closure))
        f.__qualname__ = qual
        if module_name is not None and module_name != f.__module__:
            f.__module__ = module_name
        if kwdefaults is not None:
            f.__kwdefaults__ = self.get(kwdefaults)
        if dict_id is not None:
            self.to_fill.append(("funcdict", f, dict_id))
        return f

    def build_dictiter(self, i, v):
        d = self.full(v.dict) if v.dict is not None else {}
        t = self.nodes[self.nodes[i].type_id].value
        base = {"dict_keyiterator": iter(d), "dict_valueiterator": iter(d.values())}.get(t.qualname, None)
        it = base if base is not None else iter(d.items())
        for _ in range(len(d) - v.len):
            next(it)
        return it

    def enum_value(self, node):
        """`_value_` of an Enum member's instance node."""
        d, base = node.dict, node.base
        if d is not None:
            for k, val in zip(*[iter(self.nodes[d].value.items)] * 2):
                if self.get(k) == "_value_":
                    return self.full(val)
        if base is not None and base.kind in ("int", "float", "str", "bytes"):
            return base.value  # a mixed-in type's value (IntFlag combinations)
        raise RestoreError("an Enum member without _value_")

    def build_instance(self, i, v):
        cls = self.get(self.nodes[i].type_id)
        if _is_enum_type(type(cls)):
            return cls(self.enum_value(v))  # the member (or flag combination) by value
        base = v.base
        if base is None or base.kind in ("list", "dict", "set", "bytearray"):
            obj = object.__new__(cls) if base is None else cls.__new__(cls)
        else:
            solid = next(b for b in cls.__mro__ if b.__module__ == "builtins" and b is not object)
            value = {"tuple": lambda: tuple(self.get(x) for x in base.items),
                     "frozenset": lambda: frozenset(self.get(x) for x in base.items),
                     "complex": lambda: complex(base.real, base.imag)}.get(base.kind, lambda: base.value)()
            try:
                obj = solid.__new__(cls, value)
            except TypeError:
                obj = cls(value)  # a C type over tuple (time.struct_time, os.stat_result)
        self.queue_fill(i)
        return obj

    def build_generator(self, i, v):
        frame = v.frame
        if frame is None:
            chain = next((f for f in self.frames if f.generator == i), None)
            if chain is None:  # finished: an exhausted generator of the same name
                g = (lambda: (yield))()
                g.close()
            else:
                g = self.new_generator(chain)
        else:
            g = self.new_generator(frame)
            self.generators.append((g, frame, v.state, v.exc_state))
        g.__name__, g.__qualname__ = self.get(v.name), self.get(v.qualname)
        return g

    def new_generator(self, frame, prologue=False, jump_to=0):
        code = self.get(frame.code)
        code = resumable(code, jump_to) if prologue else _parameterless(code)
        nfree = len(code.co_freevars)
        cells = frame.localsplus[len(frame.localsplus) - nfree:] if nfree else []
        closure = tuple(self.get(c) if c is not None else types.CellType() for c in cells) or None
        g = frame.globals
        func = self.get(frame.function) if frame.function is not None else None
        globals_ = self.get(g) if g is not None else (func.__globals__ if func is not None else self.main.__dict__)
        return types.FunctionType(code, globals_, code.co_name, None, closure)()

    def fill(self, item):
        if isinstance(item, tuple) and item[0] == "class_patches":
            # Set as carried, without comparing: the values may not be filled yet, and
            # comparing would run their methods (a WeakSet's __eq__ iterates it).
            _, cls, patches = item
            for name, vid in patches:
                setattr(cls, name, self.get(vid))
            return
        if isinstance(item, tuple) and item[0] == "patches":
            # Re-apply what the program rebound in an imported module.
            _, module, patches = item
            missing = object()
            for name, vid in patches:
                value = self.get(vid)
                now = getattr(module, name, missing)
                # Containers are always the carried ones: others may share them.
                if (now is missing or type(now) is not type(value)
                        or isinstance(value, (list, dict, set, bytearray)) or now != value):
                    setattr(module, name, value)
            return
        if isinstance(item, tuple):
            _, f, dict_id = item
            f.__dict__.update(self.full(dict_id))
            return
        if item in self.filled:
            return
        self.filled.add(item)
        o = self.objs[item]
        v = self.nodes[item].value
        kind = v.kind
        if kind == "list":
            o[:] = [self.get(x) for x in v.items]
        elif kind == "dict":
            it = iter(v.items)
            for k in it:
                o[self.hashable(k)] = self.get(next(it))
        elif kind == "set":
            o.update(self.hashable(x) for x in v.items)
        elif kind == "reduce":
            state, listitems, dictitems = v.state, v.listitems, v.dictitems
            if state is not None:
                state = self.deep(state)
                setstate = getattr(o, "__setstate__", None)
                if setstate is not None:
                    setstate(state)
                else:
                    slots = None
                    if isinstance(state, tuple) and len(state) == 2:
                        state, slots = state
                    if state:
                        o.__dict__.update(state)
                    for k, val in (slots or {}).items():
                        setattr(o, k, val)
            if listitems is not None:
                if hasattr(o, "extend") or not hasattr(o, "put"):
                    o.extend(self.deep(listitems))
                else:  # a queue (queue.SimpleQueue): its items in order
                    for item in self.deep(listitems):
                        o.put(item)
            if dictitems is not None:
                for k, val in self.deep(dictitems):
                    o[k] = val
        elif kind == "rebuilt":
            o.__dict__.update(self.full(v.dict))
        elif kind == "global":
            if self.nodes[v.state].value.kind == "dict":
                o.__dict__.update(self.full(v.state))  # the root logger's setup
            else:
                o.__setstate__(self.full_tuple(v.state))
        elif kind == "cell":
            if v.contents is not None:
                o.cell_contents = self.get(v.contents)
        elif kind == "exception":
            d = v.dict
            o.args = self.get(v.args) if v.args is not None else ()
            if d is not None:
                o.__dict__.update(self.full(d))
            o.__context__ = self.get(v.context)
            o.__cause__ = self.get(v.cause)
            o.__suppress_context__ = v.suppress_context
        elif kind == "instance":
            d, slots, base = v.dict, v.slots, v.base
            if base is not None and base.kind == "list":
                list.extend(o, [self.get(x) for x in base.items])
            elif base is not None and base.kind == "bytearray":
                bytearray.extend(o, base.value)
            elif base is not None and base.kind == "dict":
                # An OrderedDict keeps its own order beside the dict: its setitem keeps both.
                collections = sys.modules.get("collections")
                ordered = collections is not None and isinstance(o, collections.OrderedDict)
                setitem = collections.OrderedDict.__setitem__ if ordered else dict.__setitem__
                it = iter(base.items)
                for k in it:
                    setitem(o, self.hashable(k), self.get(next(it)))
            if d is not None:
                object.__getattribute__(o, "__dict__").update(self.full(d))
            for name, val in slots:
                if val is not None:
                    for klass in type(o).__mro__:
                        if name in vars(klass):
                            vars(klass)[name].__set__(o, self.get(val))
                            break

    def build_all(self):
        for i in range(len(self.nodes)):
            kind = self.nodes[i].value.kind
            if self.objs[i] is not NULL or kind in ("opaque", "unread", "type"):
                continue  # ready, or built on demand (only an error if something needs it)
            if kind == "reduce":
                try:
                    self.get(i)
                except Exception:
                    # e.g. an ABC's `_abc_impl`, which the class makes anew: an error
                    # only if something does need it (get() builds it again then).
                    self.objs[i] = NULL
                continue
            self.get(i)
        done = 0
        while done < len(self.to_fill):
            self.fill(self.to_fill[done])
            done += 1
        for g, frame, state, exc_state in self.generators:
            self.enter_suspended(g, frame, state, exc_state)

    def enter_suspended(self, g, frame, state, exc_state):
        state_name = STATES.get(state, "suspended")
        resume = None
        if state_name != "created":
            resume = frame.instr_start
            import dis
            code = getattr(g, "gi_code", None) or getattr(g, "cr_code", None) or g.ag_code
            for ins in dis.get_instructions(code):
                if ins.offset // 2 == frame.instr_start and ins.opname == "YIELD_VALUE":
                    resume = None
                elif resume is None and ins.offset // 2 > frame.instr_start:
                    resume = ins.offset // 2
                    break
            if resume is None:
                resume = frame.instr_start
        _native.enter_frame(g, [self.slot(x) for x in frame.localsplus], [self.slot(x) for x in frame.stack],
                            resume, NULL, self.get(frame.locals_mapping) if frame.locals_mapping is not None else None,
                            self.get(exc_state), state_name)
