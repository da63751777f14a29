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
    except BaseException as e:
        t = type(obj)
        sys._pyteleport_attach = "cannot reduce %s.%s: %s: %s" % (t.__module__, t.__qualname__, type(e).__name__, e)
