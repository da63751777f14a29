"""How an object of a C type that memory reading cannot rebuild is carried: the reduce
tuple `(callable, args, state, listitems, dictitems)` the restore engine rebuilds it from.

The shim uses it in a teleport. Attach also runs this file's source inside the target, at
its safe point, where pyteleport is usually not importable: it must need nothing but the
standard library, define nothing outside itself, and never let an exception escape
`answer_attach`.
"""


def reduce_generic(obj):
    import copyreg
    view = _numpy_view(obj)
    if view is not None:
        return view
    view = _dict_view(obj)
    if view is not None:
        return view
    threads = _thread_state(obj)
    if threads is not None:
        return threads
    csv_object = _csv_state(obj)
    if csv_object is not None:
        return csv_object
    database = _sqlite_state(obj)
    if database is not None:
        return database
    reducer = copyreg.dispatch_table.get(type(obj))
    rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
    if isinstance(rv, str):
        return rv  # a global name: the caller decides how to carry it
    rv = tuple(rv) + (None,) * (5 - len(rv))
    callable_, args, state, listitems, dictitems = rv[:5]
    return (callable_, tuple(args), state,
            list(listitems) if listitems is not None else None,
            list(dictitems) if dictitems is not None else None)


def _numpy_view(obj):
    """A numpy array viewing another one's memory, as a view of the same (carried) base:
    pickling would copy its data and part it from the base."""
    numpy = __import__("sys").modules.get("numpy")
    if numpy is None or type(obj) is not numpy.ndarray or obj.base is None:
        return None
    root = obj
    while isinstance(root.base, numpy.ndarray):
        root = root.base
    if root is obj or root.base is not None or type(root) is not numpy.ndarray or not root.flags.c_contiguous:
        return None  # a view of something else (bytes, an mmap): carried as a copy
    offset = obj.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return (numpy.ndarray, (obj.shape, obj.dtype, root, offset, obj.strides), None, None, None)


def _dict_view(obj):
    """`d.keys()`, `d.values()`, `d.items()` (live on a frame's value stack in the middle
    of `sorted(d.items())`, or kept in a variable): the same view of the same (carried)
    dict, which pickle refuses."""
    d = {}
    for method in (dict.keys, dict.values, dict.items):
        if type(obj) is type(method(d)):
            mapping = [r for r in __import__("gc").get_referents(obj) if isinstance(r, dict)]
            if len(mapping) == 1:
                return (method, (mapping[0],), None, None, None)
    return None


def _thread_state(obj):
    """`queue.SimpleQueue` (a thread pool's work queue): a new one with the same items,
    read by taking them out and putting them back (no other thread runs meanwhile).
    `_multiprocessing.SemLock`: a new semaphore of the same kind and value.
    3.13's `_thread._ThreadHandle` (what `Thread.join` waits on): a new handle, which the
    restore engine gives to the thread it starts again (or marks done, for a thread that
    had ended)."""
    import sys
    kind = type(obj).__module__ + "." + type(obj).__qualname__
    if kind == "_queue.SimpleQueue":
        import queue
        items = []
        while True:
            try:
                items.append(obj.get_nowait())
            except queue.Empty:
                break
        for item in items:
            obj.put(item)
        return (type(obj), (), None, items, None)
    if kind == "_thread._ThreadHandle":
        return (type(obj), (), None, None, None)
    if kind == "_multiprocessing.SemLock":
        # A multiprocessing lock or semaphore (tqdm's write lock holds one): a new one
        # with the same kind, value and bound; its named semaphore is unlinked at once,
        # as the original's was. One held cannot be carried (its owner is a thread).
        value = obj._get_value()
        if obj.kind == 0 and value == 0:
            # Held for a moment (tqdm holds it while it writes its bar): another moment.
            raise NotNow("a multiprocessing RLock is held at the moment (tqdm's write lock, say)")
        name = obj.name or "/pyteleport-%d-%x" % (__import__("os").getpid(), id(obj))
        return (type(obj), (obj.kind, value, obj.maxvalue, name, True), None, None, None)
    return None


# Where a reduce made here names a helper of the new process's pyteleport: by dotted
# name (this code runs in targets that cannot import pyteleport).
_HELPERS = "pyteleport._reducers."

_DIALECT_FIELDS = ("delimiter", "doublequote", "escapechar", "lineterminator", "quotechar", "quoting",
                   "skipinitialspace", "strict")


def _csv_state(obj):
    """`csv.reader`: a new reader over the same (carried) source, with its dialect and
    line number; `csv.writer`: a new writer to the same write method, with its dialect.
    Their source or `write` is not an attribute: `gc.get_referents` finds it."""
    kind = type(obj).__module__ + "." + type(obj).__qualname__
    if kind not in ("_csv.reader", "_csv.writer", "_csv.Dialect"):
        return None
    if kind == "_csv.Dialect":
        return (_HELPERS + "csv_dialect", (_dialect_fields(obj),), None, None, None)
    dialect = obj.dialect
    others = [r for r in __import__("gc").get_referents(obj) if r is not dialect and not isinstance(r, (list, type))]
    if kind == "_csv.reader":
        if len(others) != 1:
            raise TypeError("cannot find the csv reader's source")
        return (_HELPERS + "csv_reader", (others[0], _dialect_fields(dialect), obj.line_num), None, None, None)
    writes = [r for r in others if callable(r)]
    if len(writes) != 1:
        raise TypeError("cannot find the csv writer's file")
    return (_HELPERS + "csv_writer", (writes[0], _dialect_fields(dialect)), None, None, None)


class NotNow(Exception):
    """The object cannot be carried at this moment but may be soon (a transaction is
    open): attach lets the target run on and tries again, until its timeout."""


def _sqlite_state(obj):
    """`sqlite3.Connection`: reopened by path (an in-memory database: its serialized
    image) with the same isolation level, autocommit mode and factories; the supervisor
    adds what Python cannot see (detect_types, check_same_thread). Never inside a
    transaction: that would be lost. `sqlite3.Cursor`: a new cursor of the same
    connection (the supervisor refuses one in the middle of a query's rows)."""
    kind = type(obj).__module__ + "." + type(obj).__qualname__
    if not isinstance(obj, tuple(_sqlite_types())):
        return None
    import sqlite3
    if isinstance(obj, sqlite3.Connection):
        if obj.in_transaction:
            raise NotNow("a transaction is open on a sqlite3 connection (%s)" % (kind,))
        files = {name: path for _, name, path in obj.execute("PRAGMA database_list").fetchall()}
        if set(files) - {"main", "temp"}:
            raise TypeError("a sqlite3 connection with attached databases (%s) cannot be carried" % ", ".join(sorted(set(files) - {"main", "temp"})))
        if "temp" in files and obj.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0]:
            raise TypeError("a sqlite3 connection with temporary tables cannot be carried")
        path = files.get("main", "")
        image = obj.serialize() if not path else None
        autocommit = getattr(obj, "autocommit", None)
        return (_HELPERS + "sqlite_connection", (type(obj), path, image, obj.isolation_level, autocommit, obj.row_factory,
                                                 obj.text_factory), None, None, None)
    return (_HELPERS + "sqlite_cursor", (type(obj), obj.connection, obj.arraysize, obj.row_factory), None, None, None)


def _sqlite_types():
    sqlite3 = __import__("sys").modules.get("sqlite3")
    return (sqlite3.Connection, sqlite3.Cursor) if sqlite3 is not None else ()


def _dialect_fields(dialect):
    return {name: getattr(dialect, name) for name in _DIALECT_FIELDS}


def interpreter_extras():
    """Interpreter state kept outside the objects a program references, which a fresh
    interpreter would not have: the decimal context of this thread (precision, rounding,
    flags, traps...) and the Python-level signal handlers. Only what differs from a fresh
    interpreter; plain values and the handlers themselves (carried as objects)."""
    import sys
    extras = {}
    if sys.getswitchinterval() != 0.005:
        extras["switch_interval"] = sys.getswitchinterval()
    decimal = sys.modules.get("decimal")
    if decimal is not None:
        c = decimal.getcontext()
        names = lambda signals: sorted(s.__name__ for s, on in signals.items() if on)
        mine = (c.prec, c.rounding, c.Emin, c.Emax, c.capitals, c.clamp, names(c.flags), names(c.traps))
        fresh = decimal.Context()
        if mine != (fresh.prec, fresh.rounding, fresh.Emin, fresh.Emax, fresh.capitals, fresh.clamp, [], names(fresh.traps)):
            extras["decimal_context"] = mine
    signal = sys.modules.get("signal")
    if signal is not None:
        fresh = {signal.SIGINT: signal.default_int_handler}
        for name in ("SIGPIPE", "SIGXFSZ"):  # the interpreter ignores these at start
            if hasattr(signal, name):
                fresh[getattr(signal, name)] = signal.SIG_IGN
        handlers = []
        for n in signal.valid_signals():
            try:
                h = signal.getsignal(n)
            except (OSError, ValueError):
                continue
            if h is None or h == fresh.get(n, signal.SIG_DFL):
                continue
            handlers.append((int(n), int(h) if isinstance(h, int) else h))
        if handlers:
            extras["signal_handlers"] = handlers
    return extras


def answer_extras():
    """Leave `interpreter_extras()` in `sys._pyteleport_extras` for attach to read (a
    failure leaves nothing: attach then carries none of it)."""
    import sys
    try:
        sys._pyteleport_extras = interpreter_extras()
    except BaseException:
        sys.__dict__.pop("_pyteleport_extras", None)


def answer_attach():
    """Reduce the objects attach put in `sys._pyteleport_attach`; answer there with the
    list of their reduce tuples (kept alive in `sys._pyteleport_attach_kept` until attach
    removes both), or with a message saying which one failed and why."""
    import sys
    objs = sys._pyteleport_attach
    out = []
    obj = None
    try:
        for obj in objs:
            rv = reduce_generic(obj)
            if isinstance(rv, str):
                raise TypeError("it reduces to the global name %r" % (rv,))
            out.append(rv)
        sys.__dict__.setdefault("_pyteleport_attach_kept", []).append(out)
        sys._pyteleport_attach = out
    except NotNow as e:
        sys._pyteleport_attach = "not now: %s" % (e,)
    except BaseException as e:
        t = type(obj)
        sys._pyteleport_attach = "cannot reduce %s.%s: %s: %s" % (t.__module__, t.__qualname__, type(e).__name__, e)
