"""`pyteleport attach` on unmodified scripts, as a user would run it: the script runs
with its output going to a file, is attached mid-run, and must end with exactly the
output of a plain run, its later lines written by the new process."""
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "tests" / "attach_targets"
VERSIONS = ["3.11", "3.12", "3.13"]
PID = re.compile(r" ?pid=\d+")


def venv(version, exe):
    path = ROOT / ".venvs" / f"py{version}" / "bin" / exe
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup (CPython {version} is required)")
    return str(path)


def plain_output(version, script, *args):
    p = subprocess.run([venv(version, "python"), str(TARGETS / script), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return PID.sub("", p.stdout)


def tracer_of(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("TracerPid:")))


class Target:
    """A script started with stdout and stderr in files; killed (only by its own pid) at the end."""

    def __init__(self, version, script, tmp_path, *args):
        self.out_path = tmp_path / f"{script}.out"
        self.err_path = tmp_path / f"{script}.err"
        self.proc = subprocess.Popen([venv(version, "python"), str(TARGETS / script), *map(str, args)],
                                     stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"), stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.time() + 20
        while "started" not in self.out_path.read_text():
            assert time.time() < deadline, "target did not start"
            assert self.proc.poll() is None, self.err_path.read_text()
            time.sleep(0.01)

    def output(self):
        return self.out_path.read_text()

    def wait_for_line(self, needle, timeout=60):
        deadline = time.time() + timeout
        while needle not in self.output():
            if time.time() > deadline:
                raise AssertionError(f"{needle!r} never came:\n{self.output()}\n{self.err_path.read_text()}")
            time.sleep(0.02)

    def state(self):
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def target(tmp_path):
    started = []

    def start(version, script, *args):
        t = Target(version, script, tmp_path, *args)
        started.append(t)
        return t
    yield start
    for t in started:
        t.kill()


def attach(version, pid, *extra, timeout=120):
    return subprocess.run([venv(version, "pyteleport-attach"), str(pid), *extra], capture_output=True, text=True, timeout=timeout)


def pids(text):
    return [int(m) for m in re.findall(r"pid=(\d+)", text)]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("script", ["busy.py", "gen_sleep.py", "objects.py", "while_loops.py", "collections_state.py", "seeded_random.py", "iterators.py", "dates_and_decimals.py", "memoized.py", "open_files.py", "in_memory_files.py", "callbacks_from_c.py", "init_heavy.py", "environment.py", "stdlib_odds.py", "logging_job.py", "itertools_loops.py", "wrapped_generators.py", "call_temporaries.py", "bytes_loops.py", "numpy_state.py", "interpreter_extras.py", "dict_views.py", "atexit_and_weakrefs.py", "csv_files.py", "sqlite_ingest.py"])
def test_migrated_script_finishes_like_a_plain_run(version, script, target):
    expected = plain_output(version, script)
    t = target(version, script)
    time.sleep(0.15)
    res = attach(version, t.pid)
    assert res.returncode == 0, res.stderr
    assert "moved to process" in res.stderr
    assert t.proc.wait(timeout=60) == 0
    out = t.output()
    assert PID.sub("", out) == expected
    seen = pids(out)
    assert seen[0] == t.pid and seen[-1] != t.pid, "the later lines must come from the new process"


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_generators_pulled_through_c_iterators_move_correctly_at_any_moment(version, target, tmp_path):
    # A safe point inside a generator that map/enumerate/zip/filter pulls from must not
    # be taken as is (the value would skip the wrapper): attach waits for a resumable
    # moment. Checkpoints at many moments, each restored, must all give the plain output.
    expected = plain_output(version, "wrapped_generators.py")
    rng = random.Random(7)
    for trial in range(6):
        t = target(version, "wrapped_generators.py")
        t.wait_for_line("started")
        time.sleep(rng.uniform(0.02, 0.6))
        snap = tmp_path / f"c{trial}.snap"
        res = attach(version, t.pid, "--checkpoint", str(snap), "--exit")
        assert res.returncode == 0, res.stderr
        assert t.proc.wait(timeout=60) == 0
        before = t.output()
        after = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=120)
        assert after.returncode == 0, after.stderr
        assert PID.sub("", before + after.stdout) == expected, (trial, before, after.stdout, after.stderr)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("source", ["pipe", "file"])
def test_standard_input_read_ahead_is_not_lost(version, source, tmp_path):
    """sys.stdin reads its pipe or file ahead in chunks: the new process must get what the
    original had read but not consumed, then the rest."""
    data = "".join(f"{i}\n" for i in range(300))
    script = str(TARGETS / "stdin_lines.py")
    plain = subprocess.run([venv(version, "python"), script], input=data, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    src = tmp_path / "numbers.txt"
    src.write_text(data)
    out_path = tmp_path / "out"
    with open(out_path, "w") as out, open(src) as stdin_file:
        p = subprocess.Popen([venv(version, "python"), script], stdout=out, stderr=subprocess.DEVNULL,
                             stdin=subprocess.PIPE if source == "pipe" else stdin_file, text=True)
    try:
        if source == "pipe":
            p.stdin.write(data)
            p.stdin.close()
        deadline = time.time() + 20
        while "line 20 " not in out_path.read_text():
            assert time.time() < deadline and p.poll() is None, out_path.read_text()
            time.sleep(0.01)
        res = attach(version, p.pid)
        assert res.returncode == 0, res.stderr
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    out = out_path.read_text()
    assert PID.sub("", out) == PID.sub("", plain.stdout)
    assert pids(out)[-1] != p.pid, "the later lines must come from the new process"


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_state_the_new_process_cannot_rebuild_leaves_the_original_running(version, target):
    expected = plain_output(version, "vanishing_module.py")
    t = target(version, "vanishing_module.py")
    time.sleep(0.15)
    res = attach(version, t.pid)
    assert res.returncode != 0
    assert "could not rebuild" in res.stderr and "vanishing_mod" in res.stderr, res.stderr
    assert "panicked" not in res.stderr and "Traceback" not in res.stderr
    assert t.proc.wait(timeout=60) == 0
    out = t.output()
    assert PID.sub("", out) == expected
    assert set(pids(out)) == {t.pid}, "everything printed by the original"


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_exit_status_of_the_new_process_is_the_originals(version, target, tmp_path):
    script = tmp_path / "exit7.py"
    script.write_text("import os, sys, time\nprint('started', flush=True)\n"
                      "for i in range(100):\n    time.sleep(0.01)\nsys.exit(7)\n")
    p = subprocess.Popen([venv(version, "python"), str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "started"
        res = attach(version, p.pid)
        assert res.returncode == 7, res.stderr
        assert p.wait(timeout=30) == 7
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_checkpoints_of_a_changing_stack_restore_consistently(version, target, tmp_path):
    """The target runs on while its memory is decoded: every checkpoint must still be of
    one moment, and resume into the plain run's remaining output."""
    expected = plain_output(version, "recursive_pipeline.py")
    for trial in range(4):
        t = target(version, "recursive_pipeline.py")
        t.wait_for_line(f"step {3 + 4 * trial} ")
        snap = tmp_path / f"ckpt{trial}.snap"
        res = attach(version, t.pid, "--checkpoint", str(snap))
        assert res.returncode == 0, res.stderr
        assert t.proc.wait(timeout=60) == 0
        r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap), "--python", venv(version, "python")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"trial {trial}: {r.stderr}"
        tail = PID.sub("", r.stdout)
        assert tail and expected.endswith(tail), f"trial {trial}: {tail!r}"


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_checkpoint_leaves_the_process_running_and_restores_many_times(version, target, tmp_path):
    expected = plain_output(version, "gen_sleep.py")
    t = target(version, "gen_sleep.py")
    t.wait_for_line("item 10 ")
    snap = tmp_path / "ckpt.snap"
    res = attach(version, t.pid, "--checkpoint", str(snap))
    assert res.returncode == 0, res.stderr
    assert snap.exists() and snap.stat().st_size > 0
    assert t.proc.wait(timeout=60) == 0
    assert PID.sub("", t.output()) == expected
    assert set(pids(t.output())) == {t.pid}, "a checkpoint does not move the process"
    binary = venv(version, "pyteleport")
    tails = []
    for _ in range(2):
        r = subprocess.run([binary, "restore", str(snap), "--python", venv(version, "python")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        tails.append(PID.sub("", r.stdout))
    assert tails[0] == tails[1] and tails[0] and expected.endswith(tails[0])


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_checkpoint_with_exit_ends_the_process_after_the_snapshot(version, target, tmp_path):
    expected = plain_output(version, "gen_sleep.py")
    t = target(version, "gen_sleep.py")
    snap = tmp_path / "exit.snap"
    res = attach(version, t.pid, "--checkpoint", str(snap), "--exit")
    assert res.returncode == 0, res.stderr
    assert t.proc.wait(timeout=30) == 0
    r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap), "--python", venv(version, "python")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", t.output() + r.stdout) == expected


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("script", ["threaded.py", "threads_workers.py", "threads_pool.py", "threads_tqdm.py", "threads_local.py",
                                    "finished_thread.py"])
def test_threads_move_with_the_program(version, script, target):
    """Every thread moves: a heartbeat, a queue consumer, a thread holding an RLock, a
    sleeping daemon; their joins return there and the output equals a plain run's."""
    expected = plain_output(version, script)
    t = target(version, script)
    time.sleep(0.3)
    res = attach(version, t.pid)
    assert res.returncode == 0, res.stderr
    assert "moved to process" in res.stderr
    assert t.proc.wait(timeout=60) == 0
    out = t.output()
    assert PID.sub("", out) == expected
    seen = pids(out)
    assert len(set(seen)) == 2 and seen[0] != seen[-1], out


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("script", ["main_joins.py", "long_sleeps.py"])
@pytest.mark.parametrize("mode", ["move", "checkpoint"])
def test_a_main_thread_blocked_in_a_call_is_carried_from_it(version, script, mode, target, tmp_path):
    """A main thread that never reaches a safe point (it waits in join() for the whole
    run, or sleeps long between rounds) is carried from that call, made again in the new
    process: the move or checkpoint takes about a second, not the whole --timeout."""
    expected = plain_output(version, script)
    t = target(version, script)
    time.sleep(0.4)
    snap = tmp_path / "main.snap"
    started = time.time()
    res = attach(version, t.pid, *(["--checkpoint", str(snap), "--exit"] if mode == "checkpoint" else []))
    took = time.time() - started
    assert res.returncode == 0, res.stderr
    assert took < 8, f"the attach took {took:.1f} s"
    assert t.proc.wait(timeout=60) == 0
    out = t.output()
    if mode == "checkpoint":
        r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out += r.stdout
    assert PID.sub("", out) == expected, out
    assert len(set(pids(out))) == 2, out


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_thread_in_a_call_that_cannot_be_made_again_is_refused_by_name(version, target):
    t = target(version, "threads_blocked_in_c.py")
    res = attach(version, t.pid, "--timeout", "1")
    assert res.returncode != 0
    assert "other Python thread" in res.stderr and "posix.read" in res.stderr and "--main-thread-only" in res.stderr, res.stderr
    assert "panicked" not in res.stderr
    assert t.state() not in ("T", "t")
    assert t.proc.wait(timeout=30) == 0 and "done" in t.output()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_main_thread_only_says_which_threads_stay_behind(version, target):
    t = target(version, "threads_blocked_in_c.py")
    res = attach(version, t.pid, "--main-thread-only")
    assert res.returncode == 0, res.stderr
    assert "left behind" in res.stderr and "never return" in res.stderr, res.stderr
    assert t.proc.wait(timeout=60) == 0
    assert len(set(pids(t.output()))) == 2


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_timeout_in_a_long_c_call_leaves_the_process_untouched(version, target):
    t = target(version, "sleeper.py")
    res = attach(version, t.pid, "--timeout", "0.5")
    assert res.returncode != 0
    assert "no safe point" in res.stderr and "nap" in res.stderr and "untouched" in res.stderr, res.stderr
    assert t.state() not in ("T", "t")
    assert t.proc.wait(timeout=30) == 0
    assert "rested" in t.output()


def test_bad_input(tmp_path):
    binary = venv("3.12", "pyteleport")
    res = subprocess.run([binary, "attach", "999999"], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "999999" in res.stderr and "panicked" not in res.stderr
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        res = subprocess.run([binary, "attach", str(sleeper.pid)], capture_output=True, text=True, timeout=30)
        assert res.returncode != 0 and "not a CPython process" in res.stderr, res.stderr
        assert Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t")
    finally:
        sleeper.kill()
        sleeper.wait()
    # Gone mid-attach: the process is killed (by us, its parent) while we wait for its
    # safe point.
    doomed = subprocess.Popen([venv("3.12", "python"), "-c", "import time; time.sleep(10)"])
    try:
        time.sleep(0.2)
        attacher = subprocess.Popen([binary, "attach", str(doomed.pid), "--timeout", "8"], stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        doomed.kill()
        err = attacher.communicate(timeout=30)[1]
        assert attacher.returncode != 0 and "panicked" not in err, err
        assert re.search(r"exited|gone|no longer|shutting down", err), err
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait()


def test_not_ours_to_trace(tmp_path):
    """A process already traced by someone else (here: a paused `attach` of our own
    making is overkill; use a second tracer) is refused with a clear message."""
    binary = venv("3.12", "pyteleport")
    target = subprocess.Popen([venv("3.12", "python"), "-c", "import time; time.sleep(30)"])
    tracer = subprocess.Popen(["gdb", "-q", "-batch", "-p", str(target.pid), "-ex", "shell sleep 5"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while "TracerPid:\t0" in Path(f"/proc/{target.pid}/status").read_text():
            assert time.time() < deadline, "gdb did not attach"
            time.sleep(0.05)
        res = subprocess.run([binary, "attach", str(target.pid), "--timeout", "1"], capture_output=True, text=True, timeout=30)
        assert res.returncode != 0 and "traced" in res.stderr and "panicked" not in res.stderr, res.stderr
    finally:
        tracer.kill()
        tracer.wait()
        target.kill()
        target.wait()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("script,args,last_line,trials,within", [
    ("gen_sleep.py", (25,), "sum ", 50, 0.3),
    # Its numpy objects are reduced by code run inside the target: kills land in that too.
    ("numpy_state.py", (), "done ", 25, 0.6),
    # Generators pulled through map/enumerate/filter: a kill must never corrupt the loop.
    ("wrapped_generators.py", (), "filter ", 25, 0.6),
    # Threads: kills land in the wait for every thread to rest, in the new process's
    # start of its threads, and after the go.
    ("threads_workers.py", (), "done ", 25, 0.6),
])
def test_killing_the_attacher_at_any_moment_loses_nothing(version, target, script, args, last_line, trials, within):
    """SIGKILL the attacher at random moments; each run must still end with the full
    output of a plain run, no line lost and none printed twice."""
    expected = plain_output(version, script, *args)
    rng = random.Random(1234)
    outcomes = {"original finished": 0, "new process finished": 0}
    for trial in range(trials):
        t = target(version, script, *args)
        attacher = subprocess.Popen([venv(version, "pyteleport-attach"), "-q", str(t.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, within))
        attacher.kill()
        attacher.wait()
        # Cancelled, or (once the new process was told to go) completed by the tracer,
        # which outlives the attacher: either way the original ends as a plain run does.
        status = t.proc.wait(timeout=60)
        try:
            t.wait_for_line(last_line, timeout=30)
        except AssertionError as e:
            raise AssertionError(f"trial {trial}: original exited with {status}\n{e}") from None
        assert status == 0, f"trial {trial}: original exited with {status}\n{t.output()}"
        deadline = time.time() + 5
        while PID.sub("", t.output()) != expected and time.time() < deadline:
            time.sleep(0.05)
        assert PID.sub("", t.output()) == expected, f"trial {trial}:\n{t.output()}"
        outcomes["new process finished" if pids(t.output())[-1] != t.pid else "original finished"] += 1
    print(f"{version} {script}: {outcomes}")
    assert sum(outcomes.values()) == trials


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_attacher_killed_while_waiting_leaves_no_breakpoint_behind(version, target):
    """Killed while the target sleeps in C: when the target later reaches the check the
    attach was waiting for, nothing may be left armed (it would die of SIGTRAP)."""
    t = target(version, "sleeper.py")
    attacher = subprocess.Popen([venv(version, "pyteleport-attach"), "-q", str(t.pid), "--timeout", "30"])
    time.sleep(0.5)
    assert tracer_of(t.pid) not in (0, attacher.pid), "the tracing is done by a child that outlives the attacher"
    attacher.kill()
    attacher.wait()
    # That child notices and lets go of the target at once, not when the wait would end.
    deadline = time.time() + 2
    while tracer_of(t.pid) != 0:
        assert time.time() < deadline, "the target is still traced 2 s after the attacher was killed"
        time.sleep(0.02)
    assert t.proc.wait(timeout=30) == 0
    assert "rested" in t.output()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_death_by_signal_is_passed_on(version, target):
    """A program that ends killed by a signal in the new process: the original (what its
    parent waits for) ends killed by the same signal, as a plain run does."""
    plain = subprocess.run([venv(version, "python"), str(TARGETS / "dies_by_signal.py")], capture_output=True, text=True, timeout=60)
    assert plain.returncode == -signal.SIGTERM
    t = target(version, "dies_by_signal.py")
    time.sleep(0.1)
    res = attach(version, t.pid)
    assert "moved to process" in res.stderr, res.stderr
    assert t.proc.wait(timeout=60) == -signal.SIGTERM
    assert PID.sub("", t.output()) == PID.sub("", plain.stdout)
    assert pids(t.output())[-1] != t.pid


def bare_interpreter(version):
    """The CPython binary itself, where pyteleport is not importable."""
    root = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    found = sorted(root.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.fail(f"CPython {version} is missing under {root} (it is required)")
    return str(found[-1])


BARE_SCRIPT = """
import os, time
print(f"started pid={os.getpid()}", flush=True)
for i in range(40):
    time.sleep(0.01)
    print(f"round {i} pid={os.getpid()}", flush=True)
print("PYTHONPATH", os.environ.get("PYTHONPATH"), flush=True)
"""


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_program_of_the_bare_interpreter_moves_and_restores(version, tmp_path):
    """A script run by the interpreter itself (pyteleport not importable there) is moved,
    and its checkpoint restored, by the pyteleport of a venv; the program keeps seeing
    its own (unset) PYTHONPATH."""
    script = tmp_path / "bare.py"
    script.write_text(BARE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = subprocess.run([bare_interpreter(version), str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert plain.returncode == 0 and "PYTHONPATH None" in plain.stdout
    expected = PID.sub("", plain.stdout)

    def start(out_name):
        out = tmp_path / out_name
        p = subprocess.Popen([bare_interpreter(version), str(script)], stdout=open(out, "w"), stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + 20
        while "round 3 " not in out.read_text():
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.01)
        return p, out

    p, out = start("moved.out")
    try:
        res = attach(version, p.pid)
        assert res.returncode == 0, res.stderr
        assert p.wait(timeout=60) == 0
        assert PID.sub("", out.read_text()) == expected
        assert pids(out.read_text())[-1] != p.pid
    finally:
        if p.poll() is None:
            p.kill()
    p, out = start("checkpointed.out")
    try:
        snap = tmp_path / "bare.snap"
        res = attach(version, p.pid, "--checkpoint", str(snap), "--exit")
        assert res.returncode == 0, res.stderr
        assert p.wait(timeout=60) == 0
        restored = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, env=env, timeout=60)
        assert restored.returncode == 0, restored.stderr
        assert PID.sub("", out.read_text() + restored.stdout) == expected
    finally:
        if p.poll() is None:
            p.kill()


DEBIAN_PYTHON = "/usr/bin/python3.11"  # Debian 12's own: stripped, LTO-built (scripts/setup installs it)


@pytest.mark.parametrize("script", ["busy.py", "gen_sleep.py", "while_loops.py", "wrapped_generators.py"])
def test_debian_lto_interpreter_reaches_safe_points(script, tmp_path):
    """Debian's python3.11 keeps the signal handler's caller out of line and inlines the
    rest of the pending-work check into the eval loop: attach must still find its safe
    point there (it once waited out its timeout even on pure-Python loops), move the
    script and checkpoint it."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        pytest.fail(f"{DEBIAN_PYTHON} is missing: run scripts/setup (Debian's python3.11 is required)")
    plain = subprocess.run([DEBIAN_PYTHON, str(TARGETS / script)], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    expected = PID.sub("", plain.stdout)

    def start(out):
        p = subprocess.Popen([DEBIAN_PYTHON, str(TARGETS / script)], stdout=open(out, "w"), stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while "started" not in out.read_text():
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.01)
        time.sleep(0.1)
        return p

    out = tmp_path / "moved.out"
    p = start(out)
    try:
        res = attach("3.11", p.pid, "--timeout", "20")
        assert res.returncode == 0, res.stderr
        assert p.wait(timeout=60) == 0
        assert PID.sub("", out.read_text()) == expected
        assert pids(out.read_text())[-1] != p.pid
    finally:
        if p.poll() is None:
            p.kill()
    out = tmp_path / "checkpointed.out"
    p = start(out)
    try:
        snap = tmp_path / "deb.snap"
        res = attach("3.11", p.pid, "--timeout", "20", "--checkpoint", str(snap), "--exit")
        assert res.returncode == 0, res.stderr
        assert p.wait(timeout=60) == 0
        restored = subprocess.run([venv("3.11", "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
        assert restored.returncode == 0, restored.stderr
        assert PID.sub("", out.read_text() + restored.stdout) == expected
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_objects_of_c_types_are_reduced_inside_the_target(version, target, tmp_path):
    """numpy arrays and generators are carried by having the target run their reduce at
    the safe point: a checkpoint that lets the target go on leaves nothing behind in it,
    and restores (twice) into the plain run's remaining output."""
    expected = plain_output(version, "numpy_state.py")
    t = target(version, "numpy_state.py")
    t.wait_for_line("step 5 ")
    snap = tmp_path / "np.snap"
    res = attach(version, t.pid, "--checkpoint", str(snap))
    assert res.returncode == 0, res.stderr
    assert t.proc.wait(timeout=60) == 0
    assert PID.sub("", t.output()) == expected, "the checkpointed target must run on unchanged"
    tails = []
    for _ in range(2):
        r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        tails.append(PID.sub("", r.stdout))
    assert tails[0] == tails[1] and "left behind: []" in tails[0] and expected.endswith(tails[0])


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_reduce_failing_inside_the_target_is_refused_and_the_target_goes_on(version, target, tmp_path):
    expected = plain_output(version, "unreducible.py")
    t = target(version, "unreducible.py")
    res = attach(version, t.pid)
    assert res.returncode != 0
    assert "cannot reduce __main__.Stubborn: RuntimeError: not today" in res.stderr, res.stderr
    assert "panicked" not in res.stderr and "Traceback" not in res.stderr
    assert t.proc.wait(timeout=60) == 0
    assert PID.sub("", t.output()) == expected
    assert set(pids(t.output())) == {t.pid}
    assert "Traceback" not in t.err_path.read_text()


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_restored_process_is_checkpointed_again_ten_times(version, tmp_path):
    """Checkpoint, end, restore, and checkpoint the restored process again, ten rounds:
    each capture must take the program's frames (not the restore's own) so the snapshot
    keeps its size and the program ends as a plain run does."""
    expected = plain_output(version, "again_and_again.py", 400)
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    sizes = []
    with open(out_path, "w") as out, open(err_path, "w") as err:
        running = subprocess.Popen([venv(version, "python"), str(TARGETS / "again_and_again.py"), "400"], stdout=out, stderr=err)
        for round in range(10):
            # The process to checkpoint: the one that printed the last step.
            deadline = time.time() + 30
            while True:
                lines = [l for l in out_path.read_text().splitlines() if l.startswith("step ")]
                seen = pids("\n".join(lines))
                if seen and (round == 0 or len(set(seen[-3:])) == 1 and seen[-1] != sizes[-1][0]):
                    break
                assert running.poll() is None and time.time() < deadline, (round, out_path.read_text(), err_path.read_text())
                time.sleep(0.02)
            pid = seen[-1]
            snap = tmp_path / f"round{round}.snap"
            res = attach(version, pid, "--checkpoint", str(snap), "--exit")
            assert res.returncode == 0, (round, res.stderr, err_path.read_text())
            assert running.wait(timeout=30) == 0, (round, err_path.read_text())
            sizes.append((pid, snap.stat().st_size))
            running = subprocess.Popen([venv(version, "pyteleport"), "restore", str(snap)], stdout=out, stderr=err)
        assert running.wait(timeout=120) == 0, err_path.read_text()
    assert PID.sub("", out_path.read_text()) == expected, err_path.read_text()
    assert len(set(pids(out_path.read_text()))) == 11
    first, last = sizes[0][1], max(s for _, s in sizes)
    assert last < first * 1.3, f"snapshot sizes grow: {[s for _, s in sizes]}"


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_killing_the_tracer_at_any_moment_runs_the_program_exactly_once(version, target):
    """SIGKILL the tracing child itself (not the command) at random moments of a move:
    the program's output must be a plain run's, never a line twice (both processes running
    on) and never one missing (neither). The original then ends normally or, once the move
    was committed, killed by the kernel while the new process runs the program."""
    expected = plain_output(version, "gen_sleep.py", 50)
    rng = random.Random(99)
    outcomes = {}
    for trial in range(30):
        t = target(version, "gen_sleep.py", 50)
        attacher = subprocess.Popen([venv(version, "pyteleport-attach"), "-q", str(t.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while tracer_of(t.pid) in (0, attacher.pid):
            assert time.time() < deadline and t.proc.poll() is None, f"trial {trial}: never traced"
            time.sleep(0.002)
        tracer = tracer_of(t.pid)
        time.sleep(rng.uniform(0, 0.12))
        try:
            os.kill(tracer, signal.SIGKILL)  # a child of the attacher this test started
        except ProcessLookupError:
            pass
        attacher.wait(timeout=30)
        status = t.proc.wait(timeout=60)
        assert status in (0, -signal.SIGKILL), f"trial {trial}: original exited with {status}\n{t.output()}"
        deadline = time.time() + 10
        while PID.sub("", t.output()) != expected and time.time() < deadline:
            time.sleep(0.05)
        assert PID.sub("", t.output()) == expected, f"trial {trial} (original {status}):\n{t.output()}"
        key = ("killed" if status else "ended") + (" / moved" if pids(t.output())[-1] != t.pid else " / stayed")
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"{version}: {outcomes}")


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR2, signal.SIGQUIT],
                         ids=["TERM", "INT", "USR1", "HUP", "USR2", "QUIT"])
def test_signals_to_the_original_reach_the_moved_program(version, sig, target):
    """After a move the original's pid stays the job's face (what Slurm, Kubernetes,
    systemd and a terminal signal): a signal sent to it acts on the program as in a
    plain run, and `pgrep -f script` finds the new process."""
    plain = target(version, "gen_sleep.py", 400)
    plain.wait_for_line("item 20 ")
    os.kill(plain.pid, sig)
    plain_status = plain.proc.wait(timeout=30)

    t = target(version, "gen_sleep.py", 400)
    t.wait_for_line("item 5 ")
    attacher = subprocess.Popen([venv(version, "pyteleport-attach"), "-q", str(t.pid)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not [p for p in pids(t.output()) if p != t.pid]:
        assert time.time() < deadline and attacher.poll() is None, (t.output(), attacher.stderr.read() if attacher.poll() is not None else "")
        time.sleep(0.02)
    new_pid = [p for p in pids(t.output()) if p != t.pid][-1]
    cmdline = Path(f"/proc/{new_pid}/cmdline").read_bytes().split(b"\0")
    assert str(TARGETS / "gen_sleep.py").encode() in cmdline, cmdline
    os.kill(t.pid, sig)
    status = t.proc.wait(timeout=30)
    attacher.wait(timeout=30)
    assert status == plain_status, (status, plain_status, t.output(), t.err_path.read_text())
    deadline = time.time() + 5
    while Path(f"/proc/{new_pid}").exists() and b"zombie" not in Path(f"/proc/{new_pid}/status").read_bytes().lower():
        assert time.time() < deadline, "the new process outlived the signal"
        time.sleep(0.02)
    assert "sum " not in t.output()  # ended by the signal, as the plain run was


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_checkpoint_with_exit_keeps_buffered_output(version, target, tmp_path):
    """Lines the program printed into its block buffer (stdout is a file) but had not
    written at the checkpoint come out of the original before it ends, not lost."""
    expected = plain_output(version, "buffered_output.py")
    for trial, wait in enumerate((0.3, 0.8)):
        t = target(version, "buffered_output.py")
        t.wait_for_line("started")
        time.sleep(wait)
        snap = tmp_path / f"b{trial}.snap"
        res = attach(version, t.pid, "--checkpoint", str(snap), "--exit")
        assert res.returncode == 0, res.stderr
        assert t.proc.wait(timeout=30) == 0
        before = t.output()
        assert before.count("\n") > 1, "some output must have been written by then"
        r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert PID.sub("", before + r.stdout) == expected, (trial, len(before), len(r.stdout))


def test_a_move_keeps_the_targets_user_and_groups(tmp_path):
    """Root moving another user's job: the new process runs as that user (uids, gids,
    supplementary groups), never as root."""
    python = "/usr/bin/python3.11"  # readable by every user (the pyenv builds live in /root)
    assert Path(python).exists(), "scripts/setup installs Debian's python3.11"
    home = Path(tempfile.mkdtemp(prefix="pyteleport-user-"))
    try:
        os.chmod(home, 0o755)
        script = home / "whoami.py"
        script.write_text(
            "import os, time\n"
            "print(f'started pid={os.getpid()}', flush=True)\n"
            "for i in range(60):\n"
            "    time.sleep(0.02)\n"
            "    print(i, os.getuid(), os.geteuid(), os.getgid(), sorted(os.getgroups()), f'pid={os.getpid()}', flush=True)\n"
        )
        out_path = home / "out.txt"
        with open(out_path, "w") as out:
            proc = subprocess.Popen([python, str(script)], stdout=out, stderr=subprocess.STDOUT, cwd=home,
                                    user=65534, group=65534, extra_groups=[65534])
        try:
            deadline = time.time() + 30
            while "started" not in out_path.read_text():
                assert time.time() < deadline, out_path.read_text()
                time.sleep(0.02)
            res = attach("3.11", proc.pid)
            assert res.returncode == 0, res.stderr
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lines = [l for l in out_path.read_text().splitlines() if not l.startswith("started")]
        moved = [l for l in lines if f"pid={proc.pid}" not in l]
        assert len(lines) == 60 and moved, out_path.read_text()
        assert all(l.split()[1:5] == ["65534", "65534", "65534", "[65534]"] for l in lines), out_path.read_text()
    finally:
        shutil.rmtree(home)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_moved_venv_job_keeps_its_venv(version, target, tmp_path):
    """A job run by a venv's python goes on as that venv's (sys.executable, sys.prefix),
    so that `subprocess.run([sys.executable, ...])` still finds the venv's packages."""
    script = tmp_path / "venv_job.py"
    script.write_text(
        "import os, sys, time\n"
        "print(f'started pid={os.getpid()}', flush=True)\n"
        "for i in range(40):\n"
        "    time.sleep(0.02)\n"
        "    print(i, sys.executable, sys.prefix, f'pid={os.getpid()}', flush=True)\n"
    )
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        proc = subprocess.Popen([venv(version, "python"), str(script)], stdout=f, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while "started" not in out.read_text():
        assert time.time() < deadline
        time.sleep(0.01)
    res = attach(version, proc.pid)
    assert res.returncode == 0, res.stderr
    assert proc.wait(timeout=60) == 0
    lines = [l.split() for l in out.read_text().splitlines()[1:]]
    assert len(lines) == 40 and lines[-1][3] != f"pid={proc.pid}", out.read_text()
    assert {tuple(l[1:3]) for l in lines} == {(venv(version, "python"), str(ROOT / ".venvs" / f"py{version}"))}, out.read_text()
