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
    # The two newer ones passed over are said to be, each with its reason.
    assert f"skipped {d / f'ckpt-{newest + 1:06d}.snap'}: incomplete" in r.stderr, r.stderr
    assert f"skipped {d / f'ckpt-{newest + 2:06d}.snap'}: checksum" in r.stderr, r.stderr
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


def unbuffered_env():
    """The environment without PYTHONUNBUFFERED: the job's stdout to a file is then block
    buffered, as it is for most people."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def started_job(stderr_path):
    said = re.findall(r"started the job as process (\d+)", Path(stderr_path).read_text())
    return int(said[0]) if said else None


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_killed_job_with_buffered_output_resumes_and_no_line_is_lost(version, tmp_path):
    """Lines the job had printed but not flushed at a checkpoint come out: the checkpoint
    has the job flush them, so neither a crash after it nor the resume loses them."""
    job = ROOT / "tests" / "attach_targets" / "buffered_steps.py"
    plain_run = subprocess.run([venv(version, "python"), str(job)], capture_output=True, text=True, timeout=120, env=unbuffered_env())
    expected = plain_run.stdout.splitlines()
    d, out, err = tmp_path / "ckpt", tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as f, open(err, "w") as e:
        run = subprocess.Popen([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d), "--every", "300ms",
                                "--", venv(version, "python"), str(job)], stdout=f, stderr=e, env=unbuffered_env())
    wait_for(lambda: len(manifests(d)) >= 3 or run.poll() is not None, "no checkpoints")
    pid = started_job(err)
    assert pid, err.read_text()
    os.kill(pid, signal.SIGKILL)  # the job this test started (through `run`): a crash
    assert run.wait(timeout=30) == 128 + signal.SIGKILL, err.read_text()
    crashed = out.read_text().splitlines()
    assert "result" not in out.read_text()
    with open(out, "a") as f:
        r = subprocess.run([venv(version, "pyteleport"), "run", "--resume", str(d)], stdout=f, stderr=subprocess.PIPE,
                           text=True, timeout=120, env=unbuffered_env())
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    resumed = lines[len(crashed):]
    # The resume starts at a whole line the plain run printed, and ends as it does; the
    # crashed run printed every line before that one (lines after it may come twice).
    assert resumed and resumed[0] in expected, resumed[:3]
    start = expected.index(resumed[0])
    assert resumed == expected[start:], (resumed[:3], resumed[-3:])
    assert crashed[:start] == expected[:start], f"lines lost before the resume: {len(crashed)} printed, resume from line {start}"


@pytest.mark.parametrize("version", ["3.12"], ids=["py3.12"])
def test_the_job_ends_with_its_runner_and_a_group_signal_is_the_runners(version, tmp_path):
    """SIGKILL of `pyteleport run` takes the job with it (no unsupervised job left running
    alongside a later resume); an --on-signal signal sent to the whole process group (as
    Slurm and Ctrl-C do) is the runner's to act on: checkpointed, not the job's death."""
    d, out, err = tmp_path / "ckpt", tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as f, open(err, "w") as e:
        run = subprocess.Popen([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d), "--every", "10m",
                                "--", venv(version, "python"), str(JOB), STEPS], stdout=f, stderr=e, start_new_session=True)
    wait_for(lambda: started_job(err), "the job did not start")
    job = started_job(err)
    run.kill()
    run.wait()
    wait_for(lambda: not Path(f"/proc/{job}").exists() or "Z" in Path(f"/proc/{job}/stat").read_text().rsplit(")", 1)[1][:3],
             "the job outlived its runner", timeout=10)

    d2, out2, err2 = tmp_path / "ckpt2", tmp_path / "out2.txt", tmp_path / "err2.txt"
    with open(out2, "w") as f, open(err2, "w") as e:
        run = subprocess.Popen([venv(version, "pyteleport"), "run", "--checkpoint-dir", str(d2), "--on-signal", "USR1",
                                "--", venv(version, "python"), str(JOB), STEPS], stdout=f, stderr=e, start_new_session=True)
    wait_for(lambda: out2.read_text().count("step ") >= 10, "the job did not start")
    os.killpg(run.pid, signal.SIGUSR1)  # the group this test started: the runner and its job
    assert run.wait(timeout=60) == 75, err2.read_text()
    assert len(manifests(d2)) == 1, err2.read_text()
    with open(out2, "a") as f:
        r = subprocess.run([venv(version, "pyteleport"), "run", "--resume", str(d2)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", out2.read_text()) == plain(version)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_ten_rounds_of_checkpoint_on_signal_and_resume_end_as_a_plain_run(version, tmp_path):
    """A requeue loop: the job is checkpointed on its signal and ended, resumed from that
    checkpoint, and so on ten times, each time from the process the last resume started.
    The output is a plain run's, and the checkpoints keep their size."""
    steps = "400"
    expected = subprocess.run([venv(version, "python"), str(JOB), steps], capture_output=True, text=True, timeout=120)
    d, out = tmp_path / "ckpt", tmp_path / "out.txt"
    log = tmp_path / "events.jsonl"
    sizes = []
    for round in range(10):
        args = ["run", "--resume", str(d)] if round else ["run", "--checkpoint-dir", str(d)]
        with open(out, "a") as f:
            run = subprocess.Popen([venv(version, "pyteleport"), *args, "--on-signal", "USR1", "--json", "--log", str(log),
                                    "--", venv(version, "python"), str(JOB), steps], stdout=f, stderr=subprocess.PIPE, text=True)
        seen = out.read_text().count("step ")
        wait_for(lambda: out.read_text().count("step ") >= seen + 12 or run.poll() is not None, f"round {round}: no progress")
        run.send_signal(signal.SIGUSR1)
        assert run.wait(timeout=60) == 75, f"round {round}: {run.stderr.read()}"
        sizes.append(max(p.stat().st_size for p in d.glob("ckpt-*.snap")))
    with open(out, "a") as f:
        r = subprocess.run([venv(version, "pyteleport"), "run", "--resume", str(d)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert PID.sub("", out.read_text()) == PID.sub("", expected.stdout)
    assert max(sizes) < 1.5 * min(sizes), sizes
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(e["event"] == "checkpoint" and e["reason"] == "signal" for e in events) == 10, events
    assert sum(e["event"] == "stopped_after_checkpoint" and e["code"] == 75 for e in events) == 10, events


def test_a_checkpoint_directory_others_can_write_to_is_refused_before_the_job_starts(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    marker = tmp_path / "ran"
    p = subprocess.run([venv("3.12", "pyteleport"), "run", "--checkpoint-dir", str(shared), "--every", "1s",
                        "--", "touch", str(marker)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "writable by other users" in p.stderr and "panicked" not in p.stderr, p.stderr
    assert not marker.exists(), "the job was started"
    fresh = tmp_path / "new" / "ckpt"
    p = subprocess.run([venv("3.12", "pyteleport"), "run", "--checkpoint-dir", str(fresh), "--", "true"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert oct(fresh.stat().st_mode & 0o777) == "0o700"


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
