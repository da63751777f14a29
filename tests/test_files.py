"""Where snapshots are written: checkpoints, to_file and dump files are private (0600),
written only over regular files, through a temporary nobody can pre-create; `-` is
standard output; temporary snapshots leave nothing in $TMPDIR, whether the move worked
or not."""
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "tests" / "attach_targets"
VERSIONS = ["3.11", "3.12", "3.13"]
PID = re.compile(r" ?pid=\d+")
versions = pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])


def venv(version, exe):
    path = ROOT / ".venvs" / f"py{version}" / "bin" / exe
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup (CPython {version} is required)")
    return str(path)


def plain_output(version, script, *args):
    p = subprocess.run([venv(version, "python"), str(TARGETS / script), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return PID.sub("", p.stdout)


def state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Target:
    """An attach target script, output to a file; killed only by its own pid."""

    def __init__(self, version, script, out_dir, *args):
        self.out_path = out_dir / f"{script}.out"
        self.proc = subprocess.Popen([venv(version, "python"), str(TARGETS / script), *map(str, args)],
                                     stdout=open(self.out_path, "w"), stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.time() + 20
        while "started" not in self.out_path.read_text():
            assert time.time() < deadline and self.proc.poll() is None, "target did not start"
            time.sleep(0.01)

    def output(self):
        return self.out_path.read_text()

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


def attach(version, *args, env=None, timeout=120, **kw):
    return subprocess.run([venv(version, "pyteleport-attach"), *map(str, args)], capture_output=True, timeout=timeout, env=env, **kw)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def clean_refusal(res):
    err = res.stderr if isinstance(res.stderr, str) else res.stderr.decode(errors="replace")
    assert res.returncode != 0, err
    assert "panicked" not in err and "Traceback" not in err, err
    return err


PROGRAM = """import sys, pyteleport
def main():
    x = [1, 2, 3]
    {call}
    print('after', x)
main()
"""


@versions
def test_checkpoint_is_private_and_restores(version, target, tmp_path):
    expected = plain_output(version, "gen_sleep.py")
    t = target(version, "gen_sleep.py")
    snap = tmp_path / "ckpt.snap"
    res = attach(version, t.pid, "--checkpoint", snap, "--exit", text=True)
    assert res.returncode == 0, res.stderr
    assert mode(snap) == 0o600
    assert t.proc.wait(timeout=30) == 0
    r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", t.output() + r.stdout) == expected
    assert sorted(os.listdir(tmp_path)) == ["ckpt.snap", "gen_sleep.py.out"], "no temporary left beside it"


@versions
def test_to_file_and_dump_are_private(version, tmp_path):
    for call in ["pyteleport.teleport(to_file=sys.argv[1], exit=False)", "pyteleport.dump(sys.argv[1])"]:
        prog = tmp_path / "prog.py"
        prog.write_text(PROGRAM.format(call=call))
        snap = tmp_path / "out.snap"
        snap.unlink(missing_ok=True)
        # A umask that would leave a plain create world-readable.
        p = subprocess.run([venv(version, "python"), str(prog), str(snap)], capture_output=True, text=True, timeout=60,
                           preexec_fn=lambda: os.umask(0o022))
        assert p.returncode == 0, p.stderr
        assert mode(snap) == 0o600, call
        r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout == "after [1, 2, 3]\n", r.stderr


def test_a_symlink_or_fifo_at_the_path_is_refused_and_left_alone(target, tmp_path):
    version = "3.12"
    mine = tmp_path / "mine.txt"
    mine.write_text("my data\n")
    link = tmp_path / "link.snap"
    link.symlink_to(mine)
    fifo = tmp_path / "fifo.snap"
    os.mkfifo(fifo)
    expected = plain_output(version, "gen_sleep.py")
    t = target(version, "gen_sleep.py")
    for path, kind in [(link, "symbolic link"), (fifo, "FIFO"), (tmp_path, "directory")]:
        res = attach(version, t.pid, "--checkpoint", path, "--exit", text=True, timeout=30)
        err = clean_refusal(res)
        assert kind in err and str(path) in err, err
        assert "waiting for process" not in err, "refused before the target was stopped"
    assert link.is_symlink() and os.readlink(link) == str(mine)
    assert mine.read_text() == "my data\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert t.proc.wait(timeout=30) == 0, "the target went on (--exit did not end it)"
    assert PID.sub("", t.output()) == expected
    # The same through teleport(to_file=...): TeleportError, the program goes on.
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.format(call="""try:
        pyteleport.teleport(to_file=sys.argv[1], exit=False)
    except pyteleport.TeleportError as e:
        print('refused', e)"""))
    p = subprocess.run([venv(version, "python"), str(prog), str(link)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("refused") and "symbolic link" in p.stdout and p.stdout.endswith("after [1, 2, 3]\n"), p.stdout
    assert link.is_symlink() and mine.read_text() == "my data\n"


def test_a_directory_others_can_write_to_is_refused(tmp_path):
    version = "3.12"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.format(call="""try:
        pyteleport.teleport(to_file=sys.argv[1], exit=False)
    except pyteleport.TeleportError as e:
        print('refused', e)"""))
    p = subprocess.run([venv(version, "python"), str(prog), str(shared / "a.snap")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "writable by other users" in p.stdout and str(shared) in p.stdout, p.stdout
    assert os.listdir(shared) == []
    # Sticky and ours, like /tmp: fine.
    shared.chmod(0o1777)
    p = subprocess.run([venv(version, "python"), str(prog), str(shared / "a.snap")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "after [1, 2, 3]\n", p.stdout + p.stderr
    assert mode(shared / "a.snap") == 0o600


def test_a_pre_created_temporary_is_not_used(target, tmp_path):
    """Files planted under the names a writer might pick (the old scheme: .NAME.tmpPID,
    for the pids about to be used) are neither written nor renamed into place."""
    version = "3.12"
    expected = plain_output(version, "gen_sleep.py")
    crafted = tmp_path / "crafted"
    crafted.write_bytes(b"PYTELEPT crafted")
    t = target(version, "gen_sleep.py")
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    decoys = []
    for pid in range(last + 1, last + 300):
        d = tmp_path / f".ckpt.snap.tmp{pid}"
        d.write_bytes(b"PYTELEPT decoy")
        decoys.append(d)
    link = tmp_path / ".ckpt.snap.tmp"
    link.symlink_to(crafted)
    snap = tmp_path / "ckpt.snap"
    res = attach(version, t.pid, "--checkpoint", snap, "--exit", text=True)
    assert res.returncode == 0, res.stderr
    assert t.proc.wait(timeout=30) == 0
    assert all(d.read_bytes() == b"PYTELEPT decoy" for d in decoys), "a planted file was written"
    assert crafted.read_bytes() == b"PYTELEPT crafted" and link.is_symlink()
    assert snap.read_bytes() != b"PYTELEPT decoy" and mode(snap) == 0o600
    r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", t.output() + r.stdout) == expected
    left = set(os.listdir(tmp_path)) - {d.name for d in decoys} - {"crafted", ".ckpt.snap.tmp", "ckpt.snap", "gen_sleep.py.out"}
    assert left == set(), left


@versions
def test_dash_writes_the_checkpoint_to_standard_output(version, target, tmp_path):
    expected = plain_output(version, "gen_sleep.py")
    t = target(version, "gen_sleep.py")
    time.sleep(0.1)
    res = attach(version, t.pid, "--checkpoint", "-", "--exit")
    assert res.returncode == 0, res.stderr
    assert b"checkpoint written to standard output" in res.stderr
    assert res.stdout.startswith(b"PYTELEPT")
    assert t.proc.wait(timeout=30) == 0
    r = subprocess.run([venv(version, "pyteleport"), "restore", "-"], input=res.stdout, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", t.output() + r.stdout.decode()) == expected
    assert not [n for n in os.listdir(tmp_path) if n != "gen_sleep.py.out"], "nothing written beside"


def private_tmpdir(tmp_path, name):
    d = tmp_path / name
    d.mkdir(mode=0o700)
    return d, {**os.environ, "TMPDIR": str(d)}


@versions
def test_no_temporary_left_after_a_move_that_worked_or_failed(version, target, tmp_path):
    tmpdir, env = private_tmpdir(tmp_path, "tmp")
    # Worked: while the new process runs, its snapshot's private directory is 0700; once
    # the move is over nothing is left.
    expected = plain_output(version, "gen_sleep.py", 150)
    t = target(version, "gen_sleep.py", 150)
    attacher = subprocess.Popen([venv(version, "pyteleport-attach"), str(t.pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 30
        while not re.search(r"pid=(?!%d)\d+" % t.pid, t.output()):
            assert time.time() < deadline and attacher.poll() is None, "the move did not happen"
            time.sleep(0.01)
        during = list(tmpdir.iterdir())
        assert len(during) <= 1 and all(p.name.startswith("pyteleport-") and mode(p) == 0o700 for p in during), during
        err = attacher.communicate(timeout=60)[1]
    finally:
        if attacher.poll() is None:
            attacher.kill()
            attacher.wait()
    assert attacher.returncode == 0, err
    assert t.proc.wait(timeout=30) == 0
    assert PID.sub("", t.output()) == expected
    assert os.listdir(tmpdir) == []
    # Failed: the new process cannot rebuild the state; the original goes on.
    t = target(version, "vanishing_module.py")
    time.sleep(0.15)
    res = attach(version, t.pid, env=env, text=True)
    assert res.returncode != 0 and "could not rebuild" in res.stderr, res.stderr
    assert t.proc.wait(timeout=60) == 0
    assert os.listdir(tmpdir) == []


def test_restore_leaves_no_temporary_even_when_the_interpreter_fails(tmp_path):
    version = "3.12"
    tmpdir, env = private_tmpdir(tmp_path, "tmp")
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.format(call="pyteleport.dump(sys.argv[1])"))
    snap = tmp_path / "s.snap"
    p = subprocess.run([venv(version, "python"), str(prog), str(snap)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and r.stdout == "after [1, 2, 3]\n", r.stderr
    # An interpreter that cannot import pyteleport fails before reading the snapshot.
    bare = str(sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"))[-1])
    env_bare = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    r = subprocess.run([venv(version, "pyteleport"), "restore", str(snap), "--python", bare], capture_output=True, text=True,
                       timeout=60, env=env_bare, cwd="/")
    assert r.returncode != 0 and "pyteleport" in r.stderr, r.stderr
    assert os.listdir(tmpdir) == []
