"""The restore engine: rebuild the captured objects and re-enter the captured frames.

Usage: python -m pyteleport.restore [--delete] SNAPSHOT   (or - for standard input)

Each captured frame is re-entered as a generator whose code is the frame's own code
with a two-instruction prologue (RETURN_GENERATOR, POP_TOP) so that calling it makes a
suspended frame; the native module then writes the captured locals, value stack,
instruction position and handled exception into that frame. Resuming it with
`send(value)` pushes `value` exactly where the captured call's result goes, so a frame
continues as if its callee had just returned; `throw(exc)` raises at the call site, so
`try`/`with` blocks in flight see exceptions from inner frames.
"""

import io
import os
import sys
import types

from . import _native

from . import _rebuild
from ._rebuild import (  # noqa: F401  (re-exported: the engine's names, as tests use them)
    CO_VARARGS,
    CO_VARKEYWORDS,
    CO_GENERATOR,
    CO_FAST_LOCAL,
    CO_FAST_CELL,
    CO_FAST_FREE,
    STATES,
    _shift_exception_table,
    NULL,
    NO_LOCATION_4,
    RestoreError,
    PROLOGUE,
    resumable,
    _parameterless,
    _resolve,
    _UNNAMED_BUILTIN_TYPES,
    _ENUM_BOOKKEEPING,
    _is_enum_sunder,
    _is_enum_type,
    Rebuilder,
)


def _strip_traceback(exc):
    """Drop the restore engine's own frames from a traceback."""
    here = {__file__, _rebuild.__file__}
    tb, head, prev = exc.__traceback__, None, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename not in here:
            if prev is None:
                head = tb
            else:
                prev.tb_next = tb
            prev = tb
        tb = tb.tb_next
    if prev is not None:
        prev.tb_next = None
    return exc.with_traceback(head)


class _ReadAheadFirst(io.RawIOBase):
    """The original's standard input: what its `sys.stdin` had read ahead but not handed
    to the program, then the file descriptor it shares with this process."""

    def __init__(self, pending, fd):
        self.pending, self.fd = memoryview(pending), fd

    def readable(self):
        return True

    def fileno(self):
        return self.fd

    def readinto(self, buf):
        if self.pending:
            n = min(len(buf), len(self.pending))
            buf[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n
        data = os.read(self.fd, len(buf))
        buf[:len(data)] = data
        return len(data)


def _carry_stdin(pending):
    old = sys.stdin
    if not pending or old is None:
        return
    new = io.TextIOWrapper(io.BufferedReader(_ReadAheadFirst(pending, old.fileno())),
                           encoding=old.encoding, errors=old.errors, line_buffering=old.line_buffering)
    if sys.__stdin__ is old:
        sys.__stdin__ = new
    sys.stdin = new


def _resumed_sys_path(carried, here, pythonpath=""):
    """The program's sys.path as it was, except where this interpreter is another one (a
    `--python`, another machine): the original interpreter's standard-library entries
    give way to this one's, and entries that do not exist here are left out. The
    entries of this side's PYTHONPATH (`pythonpath`) that the carried path lacks come
    before the standard library, where Python puts PYTHONPATH: the program's modules
    found there when its own directory is at another path here, or absent."""
    import re
    own = re.compile(r"/(python\d+\.zip|python\d+\.\d+|python\d+\.\d+/lib-dynload)$")
    local_own = [p for p in here if own.search(p)]
    out = []
    for p in carried:
        if own.search(p):
            # This interpreter's own, in the place the first of the original's stood.
            out.extend(q for q in local_own if q not in out)
        elif p == "" or os.path.exists(p):
            if p not in out:
                out.append(p)
    extra = []
    for p in pythonpath.split(os.pathsep):
        p = os.path.abspath(p) if p else p
        if p and os.path.exists(p) and p not in out and p not in extra:
            extra.append(p)
    at = next((i for i, p in enumerate(out) if own.search(p)), len(out))
    return out[:at] + extra + out[at:]


def _set_interpreter_extras(extras):
    """What `_reduce_core.interpreter_extras` found in the original (its decimal context,
    its Python-level signal handlers, the switch interval) and its `atexit` callbacks."""
    if "switch_interval" in extras:
        sys.setswitchinterval(extras["switch_interval"])
    context = extras.get("decimal_context")
    if context is not None:
        import decimal
        prec, rounding, emin, emax, capitals, clamp, flags, traps = context
        signals = {s.__name__: s for s in decimal.Context().flags}
        decimal.setcontext(decimal.Context(prec=prec, rounding=rounding, Emin=emin, Emax=emax, capitals=capitals, clamp=clamp,
                                           flags=[signals[n] for n in flags], traps=[signals[n] for n in traps]))
    for signum, handler in extras.get("signal_handlers", ()):
        import signal
        signal.signal(signum, handler)
    callbacks = extras.get("atexit_callbacks")
    if callbacks:
        # Modules imported again here may have registered some of the same functions
        # (logging.shutdown): each is registered once, in the original's order, so the
        # handlers run as they would have there (last registered first).
        import atexit
        for func, _, _ in callbacks:
            atexit.unregister(func)
        for func, args, kwargs in callbacks:
            atexit.register(func, *args, **(kwargs or {}))


def resume(state, before_run=None):
    """Rebuild the state and run it to the end. `before_run`, called once everything is
    rebuilt and entered, may veto running (returns False): then 3 is returned."""
    _carry_stdin(state.stdin_pending)
    sys.argv[:] = state.argv
    sys.path[:] = _resumed_sys_path(state.sys_path, sys.path, os.environ.get("PYTHONPATH", ""))
    if state.cwd and os.path.isdir(state.cwd):
        os.chdir(state.cwd)
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    # The original's limit, once every frame is entered (entering needs headroom).
    old_limit = state.recursion_limit if state.recursion_limit > 0 else sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20000))
    r = Rebuilder(state, main)
    r.build_all()
    for name, i in state.redirected_streams:  # e.g. under contextlib.redirect_stdout
        setattr(sys, name, r.get(i))
    _set_interpreter_extras({name: r.get(i) for name, i in state.interpreter_extras})
    _mark("objects rebuilt")
    # Every frame of every thread is entered before any runs, so that while one runs, the
    # frames outside it are ordinary suspended generators (a teleport from the restored
    # process reads them out of `_drive`'s `pending` list).
    threads = [_CarriedThread(state.frames, state.resume, state.is_main, state.thread_object, state.held_rlocks, state.thread_id)]
    threads += [_CarriedThread(t.frames, t.resume, t.is_main, t.thread_object, t.held_rlocks, t.thread_id) for t in state.other_threads]
    from . import _reducers
    for t in threads:
        if t.is_main:
            _reducers.adopt_thread_locals(t.thread_id)
            t.pending = _enter_thread(r, t.frames, t.resume, t.thread_id)
    # The other threads enter their frames in their own threads, before any frame runs
    # (see _start_thread).
    others = [t for t in threads if not t.is_main]
    go = _start_threads(r, others)
    sys.setrecursionlimit(old_limit)
    _mark("frames entered")
    if before_run is not None and not before_run():
        _cancel(go)
        return 3
    main_thread = next((t for t in threads if t.is_main), None)
    # Always: also a capture of one thread may hold Thread objects of threads that ended,
    # whose joins must return at once there too.
    _restart_threads(r, main_thread, others)
    # The program's objects are the program's alone from here on (`Rebuilder.forget`).
    _reducers.forget_thread_locals()
    r.forget()
    del r
    go.set()
    if main_thread is None:
        # The original's main thread ran no Python code (it had ended, or was waiting
        # in C): the interpreter's own exit waits for the non-daemon threads, as there.
        return 0
    _drive(main_thread.pending)
    return 0


class _CarriedThread:
    def __init__(self, frames, resume, is_main, thread_object, held_rlocks, thread_id):
        self.frames, self.resume, self.is_main = frames, resume, is_main
        self.thread_object, self.held_rlocks, self.thread_id = thread_object, held_rlocks, thread_id
        self.pending = []
        self.entered = None


def _enter_thread(r, frames, plans, old_ident):
    import _thread
    pending = []
    new_ident = _thread.get_ident()
    for f, plan in zip(frames, plans):
        fix = None
        if old_ident != new_ident and r.get(f.code).co_name == "wait" and r.get(f.code).co_filename.endswith("threading.py"):
            # Condition.wait keeps its RLock's (count, owner ident) to take it back with:
            # the owner is this thread, under its new ident.
            def fix(value):
                if type(value) is tuple and len(value) == 2 and value[1] == old_ident:
                    return (value[0], new_ident)
                return value
        stack = [r.slot(x) for x in f.stack[:plan.keep]]
        at, send = plan.resume, NULL
        if not plan.push and stack:
            # Resumed between instructions: its top of stack is what we send.
            stack, send = stack[:-1], stack[-1]
        if f.generator is not None:
            g, shift = r.get(f.generator), 0
            if not plan.push and send is NULL:
                raise RestoreError("a generator frame stopped with an empty stack cannot be resumed")
        elif not plan.push and send is NULL:
            # Empty stack: enter right after RETURN_GENERATOR; the prologue's jump goes on.
            g, shift = r.new_generator(f, prologue=True, jump_to=plan.resume), PROLOGUE
            at = 1 - shift
        else:
            g, shift = r.new_generator(f, prologue=True), PROLOGUE
        _enter(r, g, f, plan, stack, at + shift, fix)
        # What driving it may need later, taken now: the rebuilt objects are let go
        # before anything runs (the driver's frame must not keep them all alive).
        init_self = r.get(plan.init_self) if plan.init_self is not None else None
        reentry = None
        if plan.for_iter is not None:
            mapping = r.get(f.locals_mapping) if f.locals_mapping is not None else None
            reentry = (mapping, [r.slot(x) for x in f.localsplus], r.get(plan.exc_value), [r.slot(x) for x in f.stack[:plan.keep]])
        pending.append((g, f, plan, shift, send, init_self, reentry))
    return pending


def _restart_threads(r, main_thread, others):
    """Run each carried thread again as the same Python thread: its `threading.Thread`
    object gets this process's ident and join handle, `threading` knows it as running,
    and it takes its RLocks again before its frames go on."""
    import _thread
    import threading
    running = set()
    if main_thread is not None and main_thread.thread_object is not None:
        th = r.get(main_thread.thread_object)
        fresh = threading._main_thread
        running.add(id(th))
        if th is not fresh:
            # The program's own main Thread object stands for this main thread.
            for name in ("_tstate_lock", "_handle"):
                if hasattr(fresh, name):
                    setattr(th, name, getattr(fresh, name))
            _adopt(th)
            threading._main_thread = th
    for t in others:
        if t.thread_object is not None:
            running.add(id(r.get(t.thread_object)))
    # A Thread that had ended, or was ending (its Python code done), is joined at once:
    # 3.13's join handle says it is done, 3.11/3.12's sentinel lock is free.
    # Among the rebuilt objects only: every Thread object of the program is one.
    for obj in r.objs:
        if not issubclass(type(obj), threading.Thread) or id(obj) in running or not obj._started.is_set():
            continue
        if obj is threading._main_thread:
            continue
        handle = getattr(obj, "_handle", None)
        if handle is not None and hasattr(_thread, "start_joinable_thread") and not handle.is_done():
            try:
                handle._set_done()
            except RuntimeError:  # a new handle: done once a thread that does nothing ends
                _thread.start_joinable_thread(lambda: None, handle=handle, daemon=True)
        lock = getattr(obj, "_tstate_lock", None)
        if lock is not None and lock.locked():
            lock.release()

def _adopt(th):
    import _thread
    import threading
    th._ident = _thread.get_ident()
    if hasattr(th, "_native_id"):
        th._native_id = _thread.get_native_id()
    with threading._active_limbo_lock:
        threading._active[th._ident] = th


def _start_threads(r, others):
    """Start a thread for each carried thread: it takes its identity (its Thread object
    gets this process's ident), enters its frames and takes its RLocks again, then waits
    for the returned event before its frames go on."""
    import threading
    go = threading.Event()
    for t in others:
        _start_thread(r, t, go)
    for t in others:
        t.entered.wait()
    for t in others:
        if t.failure is not None:
            _cancel(go)
            raise t.failure
    return go


def _cancel(go):
    """The program will not run here: the started threads end without running."""
    go.cancelled = True
    go.set()


def _start_thread(r, t, go):
    import _thread
    import threading
    th = r.get(t.thread_object) if t.thread_object is not None else None
    locks = [(r.get(lock), count) for lock, count in t.held_rlocks]
    tstate_lock = getattr(th, "_tstate_lock", None) if th is not None else None
    daemon = bool(getattr(th, "_daemonic", True)) if th is not None else True
    if tstate_lock is not None and not daemon and hasattr(threading, "_shutdown_locks"):
        # 3.11/3.12: the interpreter's exit waits for this lock, which the thread's end
        # releases (a thread state's own sentinel lock would, there).
        with threading._shutdown_locks_lock:
            threading._shutdown_locks.add(tstate_lock)
    t.entered, t.failure = threading.Event(), None

    def run():
        try:
            try:
                if th is not None:
                    _adopt(th)
                from . import _reducers
                _reducers.adopt_thread_locals(t.thread_id)
                t.pending = _enter_thread(r, t.frames, t.resume, t.thread_id)
                for lock, count in locks:
                    for _ in range(count):
                        lock.acquire()
            except BaseException as e:
                t.failure = e
                return
            finally:
                t.entered.set()
            go.wait()
            if getattr(go, "cancelled", False):
                return
            _drive(t.pending)
        except SystemExit:
            pass
        finally:
            if tstate_lock is not None and tstate_lock.locked():
                tstate_lock.release()

    if hasattr(_thread, "start_joinable_thread") and th is not None and getattr(th, "_handle", None) is not None:
        _thread.start_joinable_thread(run, handle=th._handle, daemon=daemon)
    elif hasattr(_thread, "start_joinable_thread"):
        _thread.start_joinable_thread(run, daemon=daemon)
    else:
        _thread.start_new_thread(run, ())


def _enter(r, g, f, plan, stack, at, fix=None):
    mapping = r.get(f.locals_mapping) if f.locals_mapping is not None else None
    localsplus = [r.slot(x) for x in f.localsplus]
    if fix is not None:
        localsplus = [x if x is NULL else fix(x) for x in localsplus]
    _native.enter_frame(g, localsplus, stack, at, NULL, mapping,
                        r.get(plan.exc_value), "suspended", True)


def _drive(pending):
    """Resume the frames innermost first, each receiving its inner frame's result (or
    exception) at its call site. `pending` holds the frames not resumed yet."""
    value, exc, finished_generator = None, None, False
    first = True
    while pending:
        g, f, plan, shift, own_value, init_self, reentry = pending.pop(0)
        send = own_value if first and not plan.push and own_value is not NULL else value
        first = False
        if exc is None and plan.init_self is not None:
            send = init_self  # C(...) returns the instance its __init__ filled
        if exc is None and finished_generator and plan.for_iter is not None:
            # The inner generator ended: re-run FOR_ITER on it so the loop ends normally.
            mapping, localsplus, exc_value, stack = reentry
            _native.enter_frame(g, localsplus, stack[:-1], plan.for_iter + shift, NULL, mapping, exc_value, "suspended", True)
            send = stack[-1]
        try:
            yielded = g.throw(exc) if exc is not None else g.send(send)
        except StopIteration as e:
            value, exc, finished_generator = e.value, None, f.generator is not None
            continue
        except RuntimeError as e:
            # 3.11 turns StopIteration leaving any generator into RuntimeError; these
            # frames were plain functions, so let the StopIteration through.
            if shift and isinstance(e.__cause__, StopIteration) and "raised StopIteration" in str(e):
                value, exc = None, e.__cause__
            else:
                value, exc = None, e
        except BaseException as e:
            value, exc = None, e
        else:
            if shift:
                raise RestoreError("a restored function frame yielded")
            value, exc = yielded, None
        finished_generator = False
    if exc is not None:
        exc = _strip_traceback(exc)
        if isinstance(exc, SystemExit):
            raise exc
        # Report it as the interpreter would an uncaught exception of the program, without
        # this engine's frames around it.
        sys.excepthook(type(exc), exc, exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):
            # As the interpreter ends on an uncaught Ctrl-C: killed by SIGINT, so that a
            # shell sees the interrupt (and stops a script running it).
            import signal
            sys.stdout.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        raise SystemExit(1)


# A teleport from this process finds the driver's frame by this code object (and the
# frames not resumed yet in its `pending` list): see pyteleport::snapshot::report.
# (The first one registered stays: under `python -m pyteleport.restore` that is __main__'s.)
if not hasattr(sys, _native.RESTORE_DRIVER_KEY):
    setattr(sys, _native.RESTORE_DRIVER_KEY, _drive.__code__)
assert _native.DRIVER_PENDING_LOCAL in _drive.__code__.co_varnames


def _read_snapshot_pipe(fd):
    """The whole snapshot from a pipe, read straight into one buffer of the size its
    header gives (falling back to chunks if the header cannot be read)."""
    header_len = _native.HEADER_LEN
    header = bytearray()
    while len(header) < header_len:
        chunk = os.read(fd, header_len - len(header))
        if not chunk:
            break
        header += chunk
    if header.startswith(_native.SHM_MARKER):
        # A large snapshot, left in shared memory for us: read it once, remove it.
        rest = [bytes(header)]
        while chunk := os.read(fd, 4096):
            rest.append(chunk)
        path = b"".join(rest)[len(_native.SHM_MARKER):].decode()
        try:
            with open(path, "rb", buffering=0) as fh:
                size = os.fstat(fh.fileno()).st_size
                data = bytearray(size)
                got = fh.readinto(data)
        finally:
            os.unlink(path)
        return data if got == size else bytes(data[:got])
    if len(header) < header_len:
        return bytes(header)
    try:
        body_len = _native.parse_header(header).body_len
    except ValueError:
        body_len = None
    if body_len is None or body_len > 1 << 40:  # not a header we know: let the decoder say what is wrong
        rest = [bytes(header)]
        while chunk := os.read(fd, 1 << 20):
            rest.append(chunk)
        return b"".join(rest)
    data = bytearray(header_len + body_len)
    data[:header_len] = header
    view, got = memoryview(data), header_len
    while got < len(data):
        n = os.readv(fd, [view[got:got + (8 << 20)]])
        if not n:
            break
        got += n
    view.release()
    if got < len(data):
        return bytes(data[:got])
    # What follows the body: an authentication tag (or bytes the decoder refuses).
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    return data


def _mark(what, _start=[None]):
    if os.environ.get("PYTELEPORT_TIMINGS"):
        import time
        now = time.perf_counter()
        _start[0] = _start[0] or now
        print(f"[pyteleport restore] {1e3 * (now - _start[0]):8.2f} ms  {what}", file=sys.stderr)


def _restore_program_pythonpath():
    """The launcher put pyteleport's own site first on PYTHONPATH: the program (and what it
    starts) sees its own value again ("=value", or unset when empty)."""
    own = os.environ.pop("PYTELEPORT_PROGRAM_PYTHONPATH", None)
    if own is not None:
        if own.startswith("="):
            os.environ["PYTHONPATH"] = own[1:]
        else:
            os.environ.pop("PYTHONPATH", None)


def _take_option(argv, name):
    """The value of `name N` in argv (removed from it), or None."""
    if name not in argv:
        return None
    i = argv.index(name)
    value = int(argv[i + 1])
    del argv[i:i + 2]
    return value


def _read_standard_input():
    """The snapshot on stdin, and whether its sender waits for a confirmation (it sent
    CONFIRM_PREAMBLE and the length first: read exactly that much, stdin stays open for
    the go)."""
    stream = sys.stdin.buffer
    preamble = _native.CONFIRM_PREAMBLE
    head = stream.read(len(preamble))
    if head != preamble:
        return head + stream.read(), False
    try:
        length = int(stream.readline(32))
    except ValueError:
        raise ValueError("the snapshot's length on standard input is not a number") from None
    data = stream.read(length)
    if len(data) != length:
        raise ValueError(f"standard input ended after {len(data)} of the snapshot's {length} bytes")
    return data, True


def main(argv=None):
    _mark("restore engine started")
    _restore_program_pythonpath()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        # The program's own command line, there for `ps` and `pgrep -f` only.
        argv = argv[:argv.index("--")]
    delete = "--delete" in argv
    argv = [a for a in argv if a != "--delete"]
    # Options first: the snapshot pipe below replaces the positional argument.
    snapshot_fd = _take_option(argv, "--snapshot-fd")
    wait_fd = _take_option(argv, "--wait-fd")
    ready_fd = _take_option(argv, "--ready-fd")
    # Confirm on stdout and wait for the go on stdin (`pyteleport restore -` read the
    # confirmation request for us).
    original_pid = _take_option(argv, "--original-pid")
    original = _watch(original_pid)
    confirm_on_stdio = "--confirm-stdio" in argv
    argv = [a for a in argv if a != "--confirm-stdio"]
    _piped = None
    if snapshot_fd is not None:
        # Started before the capture: the snapshot comes through this pipe, or nothing
        # if the capture failed.
        _piped = _read_snapshot_pipe(snapshot_fd)
        os.close(snapshot_fd)
        if not _piped:
            return 3
        argv = ["-"]
    if len(argv) != 1:
        print("usage: python -m pyteleport.restore [--delete] SNAPSHOT|-", file=sys.stderr)
        return 2
    path = argv[0]
    try:
        if _piped is not None:
            data = _piped
        elif path == "-":
            data, confirm = _read_standard_input()
            confirm_on_stdio = confirm_on_stdio or confirm
        else:
            with open(path, "rb") as fh:
                data = fh.read()
            if delete:
                os.unlink(path)
        if confirm_on_stdio:
            ready_fd, wait_fd = 1, 0
        state = _native.decode_snapshot(data, NULL)
        _mark("snapshot decoded")
    except MemoryError:
        e = "not enough memory to read and decode the snapshot"
        if confirm_on_stdio:
            _say_readiness(1, True, f"cannot restore {path}: {e}")
        print(f"pyteleport: error: cannot restore {path}: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        if confirm_on_stdio:
            _say_readiness(1, True, f"cannot restore {path}: {e}")
        print(f"pyteleport: error: cannot restore {path}: {e}", file=sys.stderr)
        return 2
    if ready_fd is not None:
        # The original waits (stopped by `pyteleport attach`, or in `teleport()`): rebuild
        # everything, say "ready" (or why not, and the original goes on), then run only
        # once it says go (EOF: it gave up, and so do we).
        signalled, ran = [], []
        def ready():
            if not _say_readiness(ready_fd, confirm_on_stdio):
                return False  # the original's side is gone: the original goes on
            signalled.append(True)
            go = os.read(wait_fd, len(_native.GO))
            committing = go == _native.COMMITTING
            if committing:
                go = os.read(wait_fd, len(_native.GO))
            if not confirm_on_stdio:
                os.close(wait_fd)
            try:
                if go == b"" and committing and original is not None:
                    # The sender died while committing the move: the original is being
                    # ended (by the kernel or its shim) and the program is ours to run.
                    # Died before, it let the original run on, however soon that ends.
                    ran.append(_ended_within(original, ORIGINAL_END_GRACE))
                else:
                    ran.append(go == _native.GO)
                return ran[-1]
            finally:
                if original is not None:
                    os.close(original)  # not the program's
        try:
            code = resume(state, before_run=ready)
        except Exception as e:
            if signalled:
                raise  # the program's own, once it runs
            _say_readiness(ready_fd, confirm_on_stdio, _rebuild_failure(e).encode(errors="replace").decode())
            _give_up()
        if not any(ran):
            _give_up()  # told not to run: nothing of the program runs here
        return code
    if wait_fd is not None:
        go = os.read(wait_fd, 1)
        os.close(wait_fd)
        if not go:
            return 3
    running = []
    def run():
        running.append(True)
        return True
    try:
        return resume(state, before_run=run)
    except Exception as e:
        if running:
            raise  # the program's own
        print(f"pyteleport: error: cannot restore {path}: {_rebuild_failure(e)}", file=sys.stderr)
        _give_up(2)


def _give_up(code=3):
    """The program does not run here (no go, or its state did not rebuild): leave at once.
    The rebuilt state already holds the program's atexit handlers, its threads (waiting,
    non-daemon ones among them) and objects with __del__: a normal exit would run the
    program's code in a process that must run none of it, or wait on its threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _rebuild_failure(e):
    """Why the state could not be rebuilt here, with what to do when it is a module of
    the program that this side cannot import."""
    if isinstance(e, MemoryError):
        return "not enough memory to rebuild the program's objects"
    why = f"{type(e).__name__}: {e}"
    if isinstance(e, ImportError) and e.name:
        why += (f" (the program's module {e.name!r} must be importable here: install it, or put "
                "its directory on PYTHONPATH)")
    return why


# How long a lost go waits for the original to end before giving up (the original is
# then running on: the move was cancelled).
ORIGINAL_END_GRACE = 3.0


def _watch(pid):
    """A pidfd of the original (None without one): opened at once, so that a later end
    cannot be confused with another process reusing its pid."""
    if pid is None:
        return None
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def _ended_within(pidfd, seconds):
    import select
    return bool(select.select([pidfd], [], [], seconds)[0])


def _say_readiness(fd, on_stdio, error=None):
    """Tell the waiting original we are ready (or why not); False if it is gone. On the
    standard output, framed so that the sender can tell it from program output (and the
    descriptor stays the program's)."""
    message = _native.encode_readiness(error) if error is not None else _native.encode_readiness()
    if on_stdio:
        message = _native.READY_MARKER + message + b"\n"
    try:
        os.write(fd, message)
        if not on_stdio:
            os.close(fd)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    code = main()
    if code:
        sys.exit(code)
