"""Attach under faults of the machine around it: a full or read-only file system, a
directory that vanishes, two attachers at once, a target another tracer holds. Each must
end with a clear message and a non-zero exit (or, for the race, one clean success), the
previous checkpoint intact, and the target finishing with its plain output.

Needs root (mount) and strace; scripts/setup installs strace."""
import os
import re
import shutil
import subprocess
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "tests" / "attach_targets"
VERSION = "3.12"
PID = re.compile(r" ?pid=\d+")


def venv(exe, version=VERSION):
    path = ROOT / ".venvs" / f"py{version}" / "bin" / exe
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup (CPython {version} is required)")
    return str(path)


def plain_output(script, *args):
    p = subprocess.run([venv("python"), str(script), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return PID.sub("", p.stdout)


def proc_state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def tracer_of(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("TracerPid:")))


class Target:
    def __init__(self, script, out_dir, *args):
        self.out_path = out_dir / f"{Path(script).name}.out"
        self.proc = subprocess.Popen([venv("python"), str(script), *map(str, args)], stdout=open(self.out_path, "w"),
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.time() + 20
        while "started" not in self.out_path.read_text():
            assert time.time() < deadline and self.proc.poll() is None, "target did not start"
            time.sleep(0.01)

    def output(self):
        return self.out_path.read_text()

    def finishes_like(self, expected, pids_other_than_own=False):
        assert self.proc.wait(timeout=60) == 0
        assert PID.sub("", self.output()) == expected, self.output()
        seen = {int(p) for p in re.findall(r"pid=(\d+)", self.output())}
        if not pids_other_than_own:
            assert seen == {self.pid}, "everything was printed by the original"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def target(tmp_path):
    started = []

    def start(script, *args):
        t = Target(script, tmp_path, *args)
        started.append(t)
        return t
    yield start
    for t in started:
        t.kill()


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs of our own, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.fail("the fault tests mount file systems: run them as root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def attach(*args, timeout=120):
    return subprocess.run([venv("pyteleport-attach"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def clean_failure(res):
    assert res.returncode != 0, res.stderr
    err = res.stderr
    assert "panicked" not in err and "Traceback" not in err and "internal error" not in err, err
    assert err.strip().splitlines()[-1].startswith("pyteleport: error: "), err
    return err


def previous_checkpoint(t, path):
    res = attach(t.pid, "--checkpoint", path)
    assert res.returncode == 0, res.stderr
    return path.read_bytes()


@pytest.mark.parametrize("exit_flag", [False, True], ids=["checkpoint", "checkpoint-exit"])
def test_full_file_system(exit_flag, target, small_fs):
    script = TARGETS / "gen_sleep.py"
    expected = plain_output(script, 200)
    t = target(script, 200)
    snap = small_fs / "ckpt.snap"
    before = previous_checkpoint(t, snap)
    # Fill what is left (unbuffered: nothing left to flush at close).
    with open(small_fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 1024)
        except OSError:
            pass
    args = [t.pid, "--checkpoint", snap] + (["--exit"] if exit_flag else [])
    err = clean_failure(attach(*args))
    assert "No space left on device" in err and str(snap) in err, err
    assert snap.read_bytes() == before, "the previous checkpoint is intact"
    assert sorted(os.listdir(small_fs)) == ["ckpt.snap", "filler"], "no temporary left"
    assert proc_state(t.pid) not in ("T", "t", None)
    t.finishes_like(expected)


def test_read_only_file_system(target, small_fs):
    script = TARGETS / "gen_sleep.py"
    expected = plain_output(script, 200)
    t = target(script, 200)
    snap = small_fs / "ckpt.snap"
    before = previous_checkpoint(t, snap)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    err = clean_failure(attach(t.pid, "--checkpoint", snap, "--exit"))
    assert "Read-only file system" in err and str(small_fs) in err, err
    assert "waiting for process" not in err, "refused before the target was stopped"
    assert snap.read_bytes() == before
    t.finishes_like(expected)


NAP_THEN_LOOP = """import os, time
print(f"started pid={os.getpid()}", flush=True)
time.sleep(1.5)
for i in range(100):
    time.sleep(0.005)
    print(f"round {i} pid={os.getpid()}", flush=True)
"""


def test_vanished_directory(target, tmp_path):
    script = tmp_path / "nap_then_loop.py"
    script.write_text(NAP_THEN_LOOP)
    expected = plain_output(script)
    # Gone before the attach: refused up front.
    t = target(script)
    err = clean_failure(attach(t.pid, "--checkpoint", tmp_path / "gone" / "ckpt.snap"))
    assert "does not exist" in err and str(tmp_path / "gone") in err, err
    assert "waiting for process" not in err
    t.finishes_like(expected)
    # Gone while the attacher waits for a safe point (the target sleeps in C), with
    # --exit: the write fails, and the target is not ended.
    t = target(script)
    d = tmp_path / "vanishing"
    d.mkdir()
    attacher = subprocess.Popen([venv("pyteleport-attach"), str(t.pid), "--checkpoint", str(d / "ckpt.snap"), "--exit"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = attacher.stderr.readline()
        assert "waiting for process" in first, first
        d.rmdir()
        err = first + attacher.stderr.read()
        attacher.wait(timeout=60)
    finally:
        if attacher.poll() is None:
            attacher.kill()
            attacher.wait()
    assert attacher.returncode != 0 and "panicked" not in err, err
    assert "does not exist" in err and str(d) in err, err
    assert not d.exists()
    t.finishes_like(expected)


@pytest.mark.parametrize("mode", ["move", "checkpoint"])
def test_two_attachers_at_once(mode, target, tmp_path):
    script = TARGETS / "gen_sleep.py"
    expected = plain_output(script, 150)
    for trial in range(3):
        t = target(script, 150)
        time.sleep(0.1)
        extra = [[], []] if mode == "move" else [["--checkpoint", str(tmp_path / f"a{trial}.snap")],
                                                  ["--checkpoint", str(tmp_path / f"b{trial}.snap")]]
        attachers = [subprocess.Popen([venv("pyteleport-attach"), str(t.pid), *e], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for e in extra]
        results = []
        for a in attachers:
            try:
                err = a.communicate(timeout=120)[1]
            finally:
                if a.poll() is None:
                    a.kill()
                    a.wait()
            results.append((a.returncode, err))
        for code, err in results:
            assert "panicked" not in err and "Traceback" not in err and "internal error" not in err, err
            if code != 0:
                assert err.strip().splitlines()[-1].startswith("pyteleport: error: "), err
        ok = [err for code, err in results if code == 0]
        if mode == "move":
            assert len(ok) <= 1, results
            t.finishes_like(expected, pids_other_than_own=bool(ok))
            moved = {int(p) for p in re.findall(r"pid=(\d+)", t.output())} - {t.pid}
            assert bool(moved) == bool(ok), (results, t.output())
        else:
            t.finishes_like(expected)
            for (code, _), name in zip(results, [f"a{trial}.snap", f"b{trial}.snap"]):
                assert (tmp_path / name).exists() == (code == 0)


def test_target_under_strace_is_refused(target, tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: run scripts/setup (it installs strace)")
    script = TARGETS / "gen_sleep.py"
    expected = plain_output(script, 150)
    t = target(script, 150)
    tracer = subprocess.Popen([strace, "-q", "-o", "/dev/null", "-p", str(t.pid)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while tracer_of(t.pid) != tracer.pid:
            assert time.time() < deadline, "strace did not attach"
            time.sleep(0.02)
        for args in ([], ["--checkpoint", str(tmp_path / "c.snap")]):
            err = clean_failure(attach(t.pid, *args, "--timeout", "2"))
            assert "traced" in err and str(tracer.pid) in err, err
        assert not (tmp_path / "c.snap").exists()
        assert tracer_of(t.pid) == tracer.pid, "strace still holds it"
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    t.finishes_like(expected)


def restore_processes_for(pid):
    """Pids of restore engines started to take over from `pid` (started by our attacher)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--original-pid" in cmd and cmd[cmd.index(b"--original-pid") + 1] == str(pid).encode():
                found.append(int(entry.name))
    return found


def test_a_new_process_killed_during_its_start_costs_the_target_nothing(tmp_path):
    """The new process dies (SIGKILL) while it rebuilds the state: the attach fails
    clearly, and the original, still stopped until then, goes on and ends as a plain run."""
    script = TARGETS / "gen_sleep.py"
    expected = plain_output(script, 60)
    killed = 0
    for trial in range(3):
        t = Target(script, tmp_path, 60)
        attacher = subprocess.Popen([venv("pyteleport-attach"), str(t.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        victims = []
        deadline = time.time() + 20
        while not victims and attacher.poll() is None and time.time() < deadline:
            victims = restore_processes_for(t.pid)
        for v in victims:
            try:
                os.kill(v, 9)  # the restore engine our attacher started
                killed += 1
            except ProcessLookupError:
                pass
        err = attacher.communicate(timeout=60)[1]
        status = t.proc.wait(timeout=60)
        assert status == 0 and PID.sub("", t.output()) == expected, (trial, err, t.output())
        if victims:
            assert attacher.returncode != 0 and "could not rebuild" in err and "panicked" not in err, err
            assert all(p == t.pid for p in map(int, re.findall(r"pid=(\d+)", t.output()))), "nothing ran elsewhere"
    assert killed, "the new process was never caught during its start"


def test_a_restore_out_of_memory_fails_clearly_and_the_checkpoint_stays(tmp_path):
    """A restore under an address-space limit too small for the state (`ulimit -v`):
    a clear error and a non-zero exit, nothing of the program run, the checkpoint intact
    and restorable without the limit."""
    prog = tmp_path / "big.py"
    marker = tmp_path / "ran"
    prog.write_text(
        "import sys, pyteleport\n"
        "def f():\n"
        "    big = bytes(300 << 20)\n"
        "    if pyteleport.dump(sys.argv[1]):\n"
        "        open(sys.argv[2], 'w').write('ran')\n"
        "        print('resumed', len(big))\n"
        "f()\n"
    )
    snap = tmp_path / "big.snap"
    p = subprocess.run([venv("python"), str(prog), str(snap), str(marker)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    before = snap.read_bytes()
    r = subprocess.run(["prlimit", f"--as={500 << 20}", venv("pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and not marker.exists(), r.stderr
    assert "memory" in r.stderr.lower() and "panicked" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) <= 3, f"a clear message, not a traceback:\n{r.stderr}"
    assert snap.read_bytes() == before
    ok = subprocess.run([venv("pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, f"resumed {300 << 20}\n"), ok.stderr


def test_a_killed_resume_leaves_its_checkpoint_to_resume_again(tmp_path):
    """`pyteleport run --resume` killed (SIGKILL) while it restores or runs the job: the job
    goes with it, the checkpoint is as it was, and the next --resume finishes the job as a
    plain run would have."""
    script = TARGETS / "again_and_again.py"
    expected = plain_output(script, 150)
    d, out = tmp_path / "ckpt", tmp_path / "out.txt"
    with open(out, "w") as f:
        run = subprocess.Popen([venv("pyteleport"), "run", "--checkpoint-dir", str(d), "--on-signal", "USR1",
                                "--", venv("python"), str(script), "150"], stdout=f, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while out.read_text().count("step ") < 20:
        assert time.time() < deadline and run.poll() is None, "the job did not start"
        time.sleep(0.02)
    run.send_signal(signal.SIGUSR1)
    assert run.wait(timeout=60) == 75, run.stderr.read()
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    for delay in (0.05, 0.4):
        with open(tmp_path / "killed.txt", "w") as f:
            killed = subprocess.Popen([venv("pyteleport"), "run", "--resume", str(d)], stdout=f, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        killed.kill()  # the resume this test started
        killed.wait()
        job = [int(x) for x in re.findall(r"as process (\d+)", killed.stderr.read())]
        for pid in job:
            deadline = time.time() + 10
            while proc_state(pid) not in (None, "Z"):
                assert time.time() < deadline, "the resumed job outlived its killed runner"
                time.sleep(0.02)
        assert {p.name: p.read_bytes() for p in d.iterdir()} == before, "the checkpoint directory changed"
    with open(out, "a") as f:
        r = subprocess.run([venv("pyteleport"), "run", "--resume", str(d)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", out.read_text()) == expected
