"""Self-report for dump targets.

A target sets up its threads, each of which ends up blocked in ``time.sleep``
inside the frames under test, then calls ``start(...)`` from the main thread
right before blocking there too.  ``start`` launches a short-lived reporter
thread which waits until every other thread is parked (two identical
snapshots in a row), writes what Python itself sees about each thread, frame
and local to the report path atomically, prints ``ready`` and exits.  Once the
reporter has gone, the frames on every stack are exactly the ones reported.
"""
import inspect
import json
import os
import sys
import threading
import time
import types


def describe(value):
    """[type name, repr, info]; info["py_repr"] is set when repr() ran Python code
    (a __repr__ defined in Python), which a memory reader cannot reproduce."""
    info = {}
    if isinstance(getattr(type(value), "__repr__", None), types.FunctionType):
        info["py_repr"] = True
    if inspect.isgenerator(value):
        gen = {"state": inspect.getgeneratorstate(value)}
        if value.gi_frame is not None and gen["state"] != inspect.GEN_RUNNING:
            gen["frame"] = frame_report(value.gi_frame)
        info["gen"] = gen
    return [type(value).__name__, repr(value), info]


def frame_report(frame):
    code = frame.f_code
    generator = bool(code.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE
                                      | inspect.CO_ASYNC_GENERATOR))
    return {
        "co_name": code.co_name,
        "co_qualname": code.co_qualname,
        "co_filename": code.co_filename,
        "co_firstlineno": code.co_firstlineno,
        "f_lineno": frame.f_lineno,
        "f_lasti": frame.f_lasti,
        "generator": generator,
        "cells": sorted(set(code.co_cellvars) | set(code.co_freevars)),
        "locals": {name: describe(v) for name, v in dict(frame.f_locals).items()},
    }


def snapshot(skip):
    names = {t.ident: (t.name, t.native_id) for t in threading.enumerate()}
    threads = []
    for ident, frame in sys._current_frames().items():
        if ident == skip:
            continue
        frames = []
        while frame is not None:
            frames.append(frame_report(frame))
            frame = frame.f_back
        name, native = names.get(ident, (None, None))
        threads.append({
            "ident": ident,
            "native_id": native,
            "name": name,
            "is_main": ident == threading.main_thread().ident,
            "frames": frames,
        })
    threads.sort(key=lambda t: t["ident"])
    return threads


def _reporter(path, n_threads, extra):
    me = threading.get_ident()
    previous = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if len(sys._current_frames()) != n_threads + 1:
            continue
        current = snapshot(me)
        if current == previous:
            break
        previous = current
    else:
        print("not settled", flush=True)
        return
    report = {
        "pid": os.getpid(),
        "version": "%d.%d" % sys.version_info[:2],
        "threads": previous,
        "extra": extra,
    }
    with open(path + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(path + ".tmp", path)
    print("ready", flush=True)


def start(n_threads, extra=None):
    """Report once ``n_threads`` threads (the caller's included) are parked."""
    path = sys.argv[1]
    threading.Thread(target=_reporter, args=(path, n_threads, extra or {}),
                     name="reporter", daemon=True).start()
