"""pyteleport: move a running Python program into a fresh process.

`dummy_teleport()` called anywhere in a program returns in a new process with the whole
stack intact. The capture is done from outside by the Rust supervisor, which stops this
process with ptrace and reads the frames out of its memory; this module only asks for it,
waits, and then ends this process with the new one's exit status.

Python code in the original process does only this: flush the standard streams (so output
before the teleport comes out before the new process's), start the supervisor, and wait.
"""
import os
import sys

# subprocess, shlex, shutil and threading are imported where used: a restored process
# imports this package too, and every millisecond of its start-up is teleport time.

__all__ = ["dummy_teleport", "teleport", "TeleportError", "tp_dummy", "tp_shell", "tp_bash", "dump"]


class TeleportError(RuntimeError):
    """The state could not be captured or delivered; this process goes on unchanged."""


def _is_executable_elf(path):
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError:
        return False
    return magic == b"\x7fELF" and os.access(path, os.X_OK)


def binary_path():
    """The supervisor binary: $PYTELEPORT_BIN, else the copy shipped inside the package.

    Never looked up on PATH: the `pyteleport` found there is usually this package's own
    console script, which would start itself in a loop. Only an executable ELF file is
    accepted, for the same reason."""
    env = os.environ.get("PYTELEPORT_BIN")
    if env:
        if not _is_executable_elf(env):
            raise TeleportError(f"PYTELEPORT_BIN={env} is not the pyteleport supervisor binary (not an executable ELF file)")
        return env
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "pyteleport")
    if not _is_executable_elf(bundled):
        what = "is not an executable ELF file" if os.path.exists(bundled) else "is missing"
        raise TeleportError(f"the pyteleport supervisor binary {bundled} {what}: this installation is incomplete "
                            "(reinstall pyteleport from a wheel, or build it from source with cargo available; "
                            "or set PYTELEPORT_BIN to a pyteleport binary)")
    return bundled


def _describe_caller(depth):
    f = sys._getframe(depth)
    return f"{f.f_code.co_qualname} ({f.f_code.co_filename}:{f.f_lineno})"


def _teleport(entry_code, caller_depth, to_file=None, to_shell=None, exit=True):
    """Ask the supervisor to capture every frame outside `entry_code` and deliver it."""
    import _thread
    where = _describe_caller(caller_depth + 1)
    if hasattr(sys, "ps1"):
        # The interactive loop is C code reading the next statement from the terminal: a
        # new process would run the rest of this statement and end, not the session.
        raise TeleportError(f"cannot teleport {where}: the interactive interpreter cannot be moved (run the code as a script)")
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    # State outside the objects the program references (decimal context, signal
    # handlers): left where the supervisor reads it, removed once it has.
    from . import _reduce_core
    sys._pyteleport_extras = _reduce_core.interpreter_extras()
    args = [binary_path(), "supervise", "--pid", str(os.getpid()), "--tid", str(_thread.get_native_id()),
            "--shim-code", str(id(entry_code)), "--python", sys.executable]
    if to_file is not None:
        args += ["--to-file", os.fspath(to_file)]
    if to_shell is not None:
        args += ["--to-shell", to_shell]
    read_end, write_end = os.pipe()
    reply_read, reply_write = os.pipe()
    args += ["--report-fd", str(write_end), "--reply-fd", str(reply_read)]
    try:
        # posix_spawn: no fork of a possibly large process, and no import of subprocess.
        os.set_inheritable(write_end, True)
        os.set_inheritable(reply_read, True)
        supervisor_pid = os.posix_spawn(args[0], args, os.environ)
    except OSError as e:
        for fd in (read_end, write_end, reply_read, reply_write):
            os.close(fd)
        raise TeleportError(f"cannot teleport {where}: cannot start the supervisor: {e}") from None
    os.close(write_end)
    os.close(reply_read)
    # The messages on these pipes are pyteleport::snapshot::report's, through _native,
    # read and written holding the GIL: while the supervisor reads this process, no other
    # thread runs Python code (they wait where they can be carried from; see
    # pyteleport::thread_rest). The long switch interval keeps them from taking the GIL
    # while this thread answers in Python.
    from ._native import decode_report, read_line_holding_gil, write_holding_gil, let_other_threads_run
    kept = []  # reduce results, alive until the supervisor has read them
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e6)
    try:
        line = read_line_holding_gil(read_end).strip()
        msg = decode_report(line)
        while msg is not None and (msg.kind == "settle" or (msg.kind == "reduce" and msg.addrs)):
            if msg.kind == "settle":
                # Another thread is not where it can be carried from: let it get there.
                sys.setswitchinterval(0.0005)
                let_other_threads_run(0.005)
                sys.setswitchinterval(1e6)
                answer = "0"
            else:
                answer = _answer_reduce(msg.addrs, kept)
            write_holding_gil(reply_write, (answer + "\n").encode())
            line = read_line_holding_gil(read_end).strip()
            msg = decode_report(line)
        if msg is not None and msg.kind == "started":
            exit_msg = decode_report(read_line_holding_gil(read_end))
            os.waitpid(supervisor_pid, 0)
            code = exit_msg.code if exit_msg is not None and exit_msg.kind == "exit" else 1
            os._exit(code)
    finally:
        sys.setswitchinterval(switch_interval)
        os.close(read_end)
        os.close(reply_write)
    sys.__dict__.pop("_pyteleport_extras", None)
    status = os.waitstatus_to_exitcode(os.waitpid(supervisor_pid, 0)[1])
    if msg is not None and msg.kind == "saved":
        if exit:
            os._exit(0)
        return msg.path
    reason = msg.message if msg is not None and msg.kind == "error" else (line or f"the supervisor exited with status {status}")
    raise TeleportError(f"cannot teleport {where}: {reason}")


def _answer_reduce(addrs, kept):
    """Reduce the objects at the requested addresses (what memory reading cannot do)."""
    from . import _reducers
    from ._native import encode_reply
    results = []
    for addr in addrs:
        obj = _reducers.from_address(addr)
        try:
            results.append(_reducers.reduce_object(obj))
        except Exception as e:
            return encode_reply(error=f"cannot reduce {type(obj).__module__}.{type(obj).__qualname__}: {type(e).__name__}: {e}")
    kept.append(results)
    return encode_reply(id(results))


def teleport(*, to_file=None, to_shell=None, exit=True, dry_run=False):
    """Move this program. Default: a fresh local process. `to_file`: write a snapshot
    (resume it with `pyteleport restore FILE`); with exit=False this process goes on, a
    checkpoint. `to_shell`: a shell command that receives the snapshot on stdin and runs
    the restore, e.g. `ssh host pyteleport restore -`."""
    if dry_run:
        return None
    return _teleport(teleport.__code__, 2, to_file=to_file, to_shell=to_shell, exit=exit)


def dummy_teleport(dry_run=False):
    """Continue this program in a fresh local process; this process then exits with its status."""
    if dry_run:
        return None
    return _teleport(dummy_teleport.__code__, 2)


# Drop-in names of the original pyteleport 0.3.4 API.
def tp_dummy(dry_run=False, **kwargs):
    """Same as `dummy_teleport` (the original's name)."""
    if dry_run:
        return None
    return _teleport(tp_dummy.__code__, 2)


def _restore_command(shell_args, python):
    """As the original does: the shell arguments, then the restore as one command string
    (`ssh host`, `bash -c`, `sh -c` all take it so)."""
    import shlex
    restore = shlex.join([python or sys.executable, "-m", "pyteleport.restore", "-"])
    return shlex.join([*shell_args, restore]) if shell_args else restore


def tp_shell(*shell_args, python=None, dry_run=False, **kwargs):
    """Run the restore through a shell command, e.g. tp_shell("ssh", "host")."""
    if dry_run:
        return None
    return _teleport(tp_shell.__code__, 2, to_shell=_restore_command(shell_args, python))


def tp_bash(*shell_args, python=None, dry_run=False, **kwargs):
    """The original's name for `tp_shell`: `tp_bash("ssh", "host")` restores there;
    with no arguments, in a local bash."""
    if dry_run:
        return None
    return _teleport(tp_bash.__code__, 2, to_shell=_restore_command(shell_args or ("bash", "-c"), python))


def dump(file, dry_run=False, **kwargs):
    """Save the running program (as the original's `dump`): to `file`, a path or a binary
    file object. Returns False here, where the program goes on, and True in the process
    that `pyteleport restore` later resumes from it."""
    if dry_run:
        return False
    # The call below is what is captured: this frame is the program's innermost, and the
    # restored process gets None from that call where this one gets the saved path.
    return _save(file) is None


def _save(file):
    if hasattr(file, "write"):
        import tempfile
        with tempfile.TemporaryDirectory(prefix="pyteleport-") as private:
            path = os.path.join(private, "snapshot")
            if _teleport(_save.__code__, 2, to_file=path, exit=False) is None:
                return None  # resumed from it
            with open(path, "rb") as fh:
                file.write(fh.read())
        return path
    return _teleport(_save.__code__, 2, to_file=os.fspath(file), exit=False)
