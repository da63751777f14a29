"""`pyteleport run`: a job started under pyteleport is checkpointed on a schedule and on a
signal, and `--resume` restores the newest complete checkpoint; every way through ends
with a plain run's output."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "tests" / "attach_targets" / "again_and_again.py"
VERSIONS = ["3.11", "3.12", "3.13"]
PID = re.compile(r" ?pid=\d+")
STEPS = "150"


def venv(version, name):
    exe = ROOT / ".venvs" / f"py{version}" / "bin" / name
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)")
    return str(exe)


def plain(version):
    p = subprocess.run([venv(version, "python"), str(JOB), STEPS], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return PID.sub("", p.stdout)


def manifests(d):
    return sorted(d.glob("ckpt-*.json"))


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_periodic_checkpoints_keep_the_newest_and_change_nothing(version, tmp_path):
    d = tmp_path / "ckpt"
    p = subprocess.run([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d), "--every", "300ms", "--keep", "3",
                        "--", venv(version, "python"), str(JOB), STEPS], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert PID.sub("", p.stdout) == plain(version)
    written = re.findall(r"checkpoint (\d+) \(schedule\) written", p.stderr)
    assert len(written) >= 4, p.stderr
    assert "exited with status 0" in p.stderr
    snaps = sorted(d.glob("ckpt-*.snap"))
    assert len(snaps) == 3 and len(manifests(d)) == 3, list(d.iterdir())
    for m in manifests(d):
        info = json.loads(m.read_text())
        assert info["size"] == m.with_suffix(".snap").stat().st_size and info["python"].startswith(version)
        assert oct(m.with_suffix(".snap").stat().st_mode & 0o777) == "0o600"
    listing = subprocess.run([venv(version, "pyteleport"), "checkpoints", str(d)], capture_output=True, text=True)
    assert listing.returncode == 0 and listing.stdout.count(" ok ") == 3, listing.stdout


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_crashed_job_resumes_from_its_newest_good_checkpoint(version, tmp_path):
    d = tmp_path / "ckpt"
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        run = subprocess.Popen([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d), "--every", "250ms",
                                "--", venv(version, "python"), str(JOB), STEPS], stdout=f, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(manifests(d)) >= 2 or run.poll() is not None, "no checkpoints")
    job = int(re.findall(r"pid=(\d+)", out.read_text())[-1])
    os.kill(job, signal.SIGKILL)  # the job this test started (through `run`): a crash
    assert run.wait(timeout=30) == 128 + signal.SIGKILL, run.stderr.read()
    # A partly written newer checkpoint (no manifest) and a corrupt one are never chosen.
    newest = max(int(m.stem.split("-")[1]) for m in manifests(d))
    (d / f"ckpt-{newest + 1:06d}.snap").write_bytes(b"PYTELEPT half")
    good = manifests(d)[-1]
    bad = d / f"ckpt-{newest + 2:06d}"
    bad.with_suffix(".snap").write_bytes(good.with_suffix(".snap").read_bytes()[:-10] + b"0123456789")
    bad.with_suffix(".json").write_text(good.read_text().replace(f'"sequence": {newest}', f'"sequence": {newest + 2}'))
    listing = subprocess.run([venv(version, "pyteleport"), "checkpoints", str(d)], capture_output=True, text=True).stdout
    assert "incomplete" in listing and "checksum" in listing, listing
    r = subprocess.run([venv(version, "pyteleport"), "run", "--resume", str(d)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resumed {d / good.with_suffix('.snap').name}" in r.stderr, r.stderr
    expected = plain(version)
    assert PID.sub("", r.stdout) and expected.endswith(PID.sub("", r.stdout)), r.stdout
    assert r.stdout.splitlines()[-1].startswith("result ")


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_checkpoint_on_signal_ends_the_job_and_resume_finishes_it(version, tmp_path):
    """The scheduler's notice (Slurm --signal=B:USR1@N, a Kubernetes SIGTERM): checkpoint,
    end the job, exit 75; `--resume` later goes on from there, nothing lost or repeated."""
    d = tmp_path / "ckpt"
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        run = subprocess.Popen([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d), "--on-signal", "USR1,TERM",
                                "--", venv(version, "python"), str(JOB), STEPS], stdout=f, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: out.read_text().count("step ") >= 20, "the job did not start")
    run.send_signal(signal.SIGTERM)
    err = run.communicate(timeout=60)[1]
    assert run.returncode == 75, err
    assert "ended; resume it with --resume" in err and len(manifests(d)) == 1, err
    before = out.read_text()
    assert "result" not in before
    with open(out, "a") as f:
        r = subprocess.run([venv(version, "pyteleport"), "run", "--resume", str(d), "--on-signal", "USR1"], stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", out.read_text()) == plain(version)


def test_run_refuses_bad_input_clearly(tmp_path):
    binary = venv("3.12", "pyteleport")
    for args, said in [
        (["run", "--", "true"], "--checkpoint-dir"),
        (["run", "--checkpoint-dir", str(tmp_path), "--every", "soon", "--", "true"], "--every"),
        (["run", "--checkpoint-dir", str(tmp_path), "--on-signal", "USR9", "--", "true"], "--on-signal"),
        (["run", "--resume", str(tmp_path / "empty")], "no complete checkpoint"),
        (["run", "--checkpoint-dir", str(tmp_path), "--requeue", "--", "true"], "--on-signal"),
        (["run", "--checkpoint-dir", str(tmp_path), "--on-signal", "USR1", "--requeue", "--", "true"], "SLURM_JOB_ID"),
    ]:
        env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
        p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode != 0 and said in p.stderr and "panicked" not in p.stderr, (args, p.stderr)


@pytest.mark.parametrize("works", [True, False], ids=["requeued", "requeue-refused"])
def test_requeue_runs_scontrol_only_once_the_checkpoint_is_complete(works, tmp_path):
    """`--requeue` (in a Slurm job): after the checkpoint on the signal, and only once it is
    complete and the job has ended, `scontrol requeue $SLURM_JOB_ID`; if Slurm refuses, the
    run says so and still exits 75 with the checkpoint kept. (tests/test_slurm.py does
    this under a real Slurm; here `scontrol` is a stand-in that records what it saw.)"""
    d = tmp_path / "ckpt"
    out = tmp_path / "out.txt"
    seen = tmp_path / "seen.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f"""#!/bin/sh
echo "args: $*" > {seen}
ls {d} >> {seen}
job=$(sed -n 's/.* pid=\\([0-9]*\\)$/\\1/p' {out} | tail -n 1)
[ -e /proc/$job ] && echo "job $job alive" >> {seen}
{'exit 0' if works else 'echo "slurm_requeue error: Requested operation is presently disabled" >&2; exit 1'}
""")
    fake.chmod(0o755)
    env = dict(os.environ, SLURM_JOB_ID="4242", PATH=f"{bin_dir}:{os.environ['PATH']}")
    with open(out, "w") as f:
        run = subprocess.Popen([venv("3.12", "pyteleport"), "run", "--checkpoint-dir", str(d), "--on-signal", "USR1", "--requeue",
                                "--", venv("3.12", "python"), str(JOB), STEPS], stdout=f, stderr=subprocess.PIPE, text=True, env=env)
    wait_for(lambda: out.read_text().count("step ") >= 20, "the job did not start")
    run.send_signal(signal.SIGUSR1)
    err = run.communicate(timeout=60)[1]
    assert run.returncode == 75, err
    said = seen.read_text()
    assert said.startswith("args: requeue 4242\n") and "alive" not in said, said
    assert "ckpt-000001.snap" in said and "ckpt-000001.json" in said, said
    assert err.index("ended; resume it with --resume") < err.index("4242"), err
    if works:
        assert "requeued Slurm job 4242" in err, err
    else:
        assert "could not requeue Slurm job 4242: slurm_requeue error: Requested operation is presently disabled" in err, err
    assert len(manifests(d)) == 1
