"""Fixtures for testing `pyteleport dump` against real CPython processes.

Environment:
  PYTELEPORT_BIN      the binary (default: <repo>/target/release/pyteleport)
  PYTELEPORT_PYTHONS  colon-separated interpreters (default: CPython 3.11, 3.12, 3.13
                      from pyenv, and 3.14, 3.15 through the host wrappers of the sid
                      chroot that scripts/sid-pythons caches).  A missing interpreter
                      fails the tests that use it.
  PYTELEPORT_SID_CACHE  where scripts/sid-pythons keeps that chroot
  PYSPY_BIN           py-spy (default: next to the Python running pytest, then PATH)
"""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGETS_DIR = Path(__file__).resolve().parent / "dump_targets"

DEFAULT_PYTHONS = [
    "/root/.pyenv/versions/3.11.7/bin/python3.11",
    "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "/root/.pyenv/versions/3.13.0/bin/python3.13",
]
UNSUPPORTED_PYTHON = "/root/.pyenv/versions/3.10.13/bin/python3.10"


def sid_cache():
    """The cache of scripts/sid-pythons (same rule as the script)."""
    if os.environ.get("PYTELEPORT_SID_CACHE"):
        return Path(os.environ["PYTELEPORT_SID_CACHE"])
    shared = Path("/var/cache/pyteleport/sid-pythons")
    if os.geteuid() == 0 or (shared / "complete").is_file():
        return shared
    return REPO / ".cache" / "sid-pythons"


# Debian's CPython 3.14 and 3.15 (scripts/sid-pythons): pyteleport reads them (dump) but
# does not move them yet.
DUMP_ONLY_PYTHONS = [str(sid_cache() / "bin" / f"python{v}") for v in ("3.14", "3.15")]
DEFAULT_PYTHONS = DEFAULT_PYTHONS + DUMP_ONLY_PYTHONS


def _pythons():
    env = os.environ.get("PYTELEPORT_PYTHONS")
    if env:
        return [p for p in env.split(":") if p]
    return list(DEFAULT_PYTHONS)


PYTHONS = _pythons()


def python_id(path):
    m = re.search(r"python(\d+\.\d+)", os.path.basename(path)) or re.search(r"(\d+\.\d+)", path)
    return "py" + m.group(1) if m else os.path.basename(path)


PYTHON_IDS = [python_id(p) for p in PYTHONS]


# --------------------------------------------------------------------------- binary

def _binary_path():
    return Path(os.environ.get("PYTELEPORT_BIN") or REPO / "target" / "release" / "pyteleport")


@pytest.fixture(scope="session")
def pyteleport_bin():
    path = _binary_path()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"pyteleport binary not found at {path}: build it first with "
            f"`cd {REPO} && cargo build --release -p pyteleport` (or set PYTELEPORT_BIN)",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def pyspy_bin():
    candidates = [os.environ.get("PYSPY_BIN"), str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.fail("py-spy not found: install tests/requirements.txt into the venv running pytest "
                "(or set PYSPY_BIN)", pytrace=False)


# ----------------------------------------------------------------------- interpreters

@pytest.fixture(params=PYTHONS, ids=PYTHON_IDS)
def python(request):
    """Each supported interpreter in turn; a missing one is a failure, not a skip."""
    path = request.param
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"required interpreter {path} is missing (set PYTELEPORT_PYTHONS to override)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def unsupported_python():
    if not (os.path.isfile(UNSUPPORTED_PYTHON) and os.access(UNSUPPORTED_PYTHON, os.X_OK)):
        pytest.fail(f"required interpreter {UNSUPPORTED_PYTHON} is missing", pytrace=False)
    return UNSUPPORTED_PYTHON


# ------------------------------------------------------------------------- processes

def proc_state(pid):
    """The one-letter state of /proc/PID/stat (R, S, D, T, t, Z...), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(")") + 2]


def task_states(pid):
    """State letter of every thread of PID."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[int(tid)] = data[data.rindex(")") + 2]
    return out


class Spawned:
    """A child process whose stdout lines are collected by a reader thread."""

    def __init__(self, argv, stdin=subprocess.DEVNULL):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr_text = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self):
        self.stderr_text = self.proc.stderr.read()

    def wait_line(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.argv}: no expected line within {timeout}s; "
                                   f"stdout={self.all_lines[-5:]} stderr={self.stderr_text[-2000:]}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                self._err_reader.join(5)
                raise RuntimeError(f"{self.argv} exited with {self.proc.returncode} before the expected "
                                   f"line; stdout={self.all_lines[-5:]} stderr={self.stderr_text[-2000:]}")
            if predicate(line):
                return line

    def kill(self):
        """Kill exactly the process we spawned (by its pid, through Popen) and reap it."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            try:
                if stream:
                    stream.close()
            except Exception:
                pass


class Target(Spawned):
    """A dump target script parked in known frames, with its own self-report."""

    def __init__(self, python, name, report_path):
        self.name = name
        self.python = python
        self.script = str(TARGETS_DIR / f"{name}.py")
        self.report_path = str(report_path)
        super().__init__([python, self.script, self.report_path])
        self.report = None

    def wait_ready(self, timeout=30):
        self.wait_line(lambda l: l == "ready", timeout)
        with open(self.report_path) as f:
            self.report = json.load(f)
        # The reporter thread prints "ready" and exits; wait until it has, so that the
        # threads in the process are exactly the reported ones.
        # Threads running only C code are not reported (as in sys._current_frames()):
        # a target says how many it started.
        want = len(self.report["threads"]) + self.report["extra"].get("c_only_threads", 0)
        deadline = time.monotonic() + timeout
        while len(task_states(self.pid)) != want:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early: {self.stderr_text}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: expected {want} threads, have {task_states(self.pid)}")
            time.sleep(0.01)
        return self


@pytest.fixture
def spawn():
    """Factory for child processes; every one of them is killed at teardown by pid."""
    children = []

    def _spawn(argv, **kw):
        child = Spawned(argv, **kw)
        children.append(child)
        return child

    yield _spawn
    for child in children:
        child.kill()


@pytest.fixture(scope="session")
def parked_targets(tmp_path_factory):
    """Parked targets are read-only to the tests, so each (interpreter, script) is
    started once per session and reused; all are killed at session end."""
    cache = {}
    started = []

    def get(python, name):
        key = (python, name)
        if key not in cache:
            report = tmp_path_factory.mktemp("report") / f"{name}.json"
            target = Target(python, name, report)
            started.append(target)
            try:
                target.wait_ready()
            except Exception:
                target.kill()
                raise
            cache[key] = target
        target = cache[key]
        assert target.proc.poll() is None, f"target {name} on {python} died: {target.stderr_text}"
        return target

    yield get
    for target in started:
        target.kill()


# ---------------------------------------------------------------------------- dumper

@pytest.fixture(scope="session")
def run_dump(pyteleport_bin):
    def _run(pid, json_out=False, timeout=30, extra=()):
        argv = [pyteleport_bin, "dump", "--pid", str(pid), *extra]
        if json_out:
            argv.append("--json")
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    return _run


@pytest.fixture(scope="session")
def dump_json(run_dump):
    def _dump(pid):
        res = run_dump(pid, json_out=True)
        assert res.returncode == 0, f"dump --json failed ({res.returncode}): {res.stderr}"
        return json.loads(res.stdout)

    return _dump
