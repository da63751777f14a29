"""`pyteleport run` under a real Slurm: the test starts a one-node cluster of its own
(Debian's munged, slurmctld and slurmd, with a private munge socket and key, private ports,
state and spool directories) and submits the batch script of docs/ops.md (`sbatch --requeue
--open-mode=append --signal=B:USR1@N`, `exec pyteleport run --resume DIR ... --requeue`).

Each job is warned while it runs (by `scancel --signal=USR1 --batch`, which is what
`--signal=B:USR1@N` does, at a moment the test chooses; and once by the time-limit warning
itself), is checkpointed and requeued by `pyteleport run`, runs again, resumes from its
checkpoint and finishes; its output, appended across the requeues, equals a plain run's.

Everything is required: a missing Slurm or munge program fails these tests (scripts/setup
installs them), and every daemon the test started is stopped at the end, by its pid.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "tests" / "attach_targets" / "again_and_again.py"
PID = re.compile(r" ?pid=\d+")
PROGRAMS = ["munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue", "sinfo"]
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
SIGNAL_STEPS = 1000  # ~20 s of work (a step is a 20 ms sleep and a line)
TIME_LIMIT_STEPS = 2500  # ~50 s: outlives the warning of a 2-minute limit (10-40 s after the start)


def program(name):
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    if not path:
        pytest.fail(f"{name} is missing: run scripts/setup (it installs Debian's slurm-wlm and munge)", pytrace=False)
    return path


def venv(version, name):
    exe = ROOT / ".venvs" / f"py{version}" / "bin" / name
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)", pytrace=False)
    return str(exe)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"({e})"


class Cluster:
    """munged, slurmctld and slurmd, all this test's own children, on a config of its own."""

    def __init__(self, base):
        self.base = base
        self.conf = base / "slurm.conf"
        self.socket = base / "munge.socket"
        self.host = socket.gethostname().split(".")[0]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        self.env["SLURM_CONF"] = str(self.conf)
        self.daemons = {}  # name -> Popen

    def command(self, *argv, check=True, timeout=30):
        p = subprocess.run([program(argv[0]), *argv[1:]], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited with {p.returncode}: {p.stderr.strip()}\n{self.logs()}")
        return p

    def spawn(self, name, *argv):
        log = open(self.base / f"{name}.stderr", "w")
        self.daemons[name] = subprocess.Popen([program(name), *argv], env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    def logs(self):
        return "\n".join(f"--- {f.name}:\n{tail(f)}" for f in sorted(self.base.glob("*.log")) + sorted(self.base.glob("*.stderr")))

    def wait(self, predicate, what, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            dead = [n for n, p in self.daemons.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"{what} (daemons ended: {dead or 'none'})\n{self.logs()}")
            time.sleep(0.2)

    def start(self):
        for d in ("state", "spool"):
            (self.base / d).mkdir()
        key = self.base / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        # --force: the socket's directory (under pytest's private tmp) is not open to all.
        self.spawn("munged", "--foreground", "--force", f"--socket={self.socket}", f"--key-file={key}",
                   f"--pid-file={self.base / 'munged.pid'}", f"--log-file={self.base / 'munged.log'}",
                   f"--seed-file={self.base / 'munged.seed'}")

        def munge_works():
            cred = subprocess.run([program("munge"), "-n", "-S", str(self.socket)], capture_output=True)
            return cred.returncode == 0 and subprocess.run([program("unmunge"), "-S", str(self.socket)], input=cred.stdout,
                                                            capture_output=True).returncode == 0

        self.wait(munge_works, "munged did not answer (munge -n | unmunge)", 20)
        with open("/proc/meminfo") as f:
            mem_mb = int(f.readline().split()[1]) // 1024
        b = self.base
        self.conf.write_text(f"""\
ClusterName=pyteleport
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it runs again (default 120 s).
AuthInfo=socket={self.socket},cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MpiDefault=none
JobRequeue=1
KillWait=5
ReturnToService=2
MailProg=/bin/true
# The node as configured (its jobs mostly sleep): four run at once on two cores.
SlurmdParameters=config_overrides
StateSaveLocation={b / 'state'}
SlurmdSpoolDir={b / 'spool'}
SlurmctldPidFile={b / 'slurmctld.pid'}
SlurmdPidFile={b / 'slurmd.pid'}
SlurmctldLogFile={b / 'slurmctld.log'}
SlurmdLogFile={b / 'slurmd.log'}
NodeName={self.host} NodeAddr=127.0.0.1 CPUs=8 RealMemory={max(100, mem_mb // 4)} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        self.spawn("slurmctld", "-D", "-i")
        self.wait(lambda: self.command("scontrol", "ping", check=False).stdout.count("UP") >= 1, "slurmctld did not come up", 30)
        self.spawn("slurmd", "-D", "-N", self.host)
        self.wait(lambda: self.command("sinfo", "-h", "-o", "%T", check=False).stdout.strip() == "idle", "the node did not become idle", 60)

    def job(self, jobid):
        p = self.command("scontrol", "-o", "show", "job", str(jobid))
        return dict(re.findall(r"(\w+)=(\S*)", p.stdout))

    def stop(self):
        """Cancel what runs, stop the daemons (ours, by pid), and kill whatever is left of
        the jobs (processes carrying this cluster's SLURM_CONF); say if anything was."""
        problems = []
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            ids = self.command("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if ids:
                self.command("scancel", *ids, check=False)
                deadline = time.monotonic() + 30
                while self.command("squeue", "-h", "-o", "%i", check=False).stdout.split() and time.monotonic() < deadline:
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.daemons.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                problems.append(f"{name} needed SIGKILL")
        mark = f"SLURM_CONF={self.conf}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if mark in env and int(pid) != os.getpid():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    problems.append(f"process {pid} of the cluster was left running")
                except ProcessLookupError:
                    pass
        return problems


@dataclass
class Submitted:
    name: str
    version: str
    warning: str  # "scancel": the test sends the warning; "time limit": Slurm does
    steps: int
    base: Path
    jobid: int = 0
    warned_at_step: int = -1
    extended: bool = False
    info: dict = field(default_factory=dict)
    problem: str = ""
    timeline: list = field(default_factory=list)  # (seconds since submission, state, restarts, steps done)

    @property
    def out(self):
        return self.base / "job.out"

    @property
    def err(self):
        return self.base / "job.err"

    def script(self):
        # docs/ops.md's script; --time and the warning suited to a test that lasts a minute.
        limit, warn = ("10", "60") if self.warning == "scancel" else ("2", "80")
        return f"""#!/bin/bash
#SBATCH --job-name={self.name} --time={limit} --requeue --open-mode=append
#SBATCH --signal=B:USR1@{warn} --output={self.out} --error={self.err}
DIR={self.base}/checkpoints/$SLURM_JOB_ID
exec {venv(self.version, 'pyteleport')} run --resume "$DIR" --checkpoint-dir "$DIR" --every 5s --keep 2 \\
    --on-signal USR1,TERM --requeue -- {venv(self.version, 'python')} {JOB} {self.steps}
"""

    def steps_done(self):
        try:
            return self.out.read_text().count("step ")
        except FileNotFoundError:
            return 0

    def report(self):
        state = " ".join(f"{k}={self.info.get(k)}" for k in ("JobState", "Reason", "Restarts", "ExitCode", "RunTime"))
        return (f"{self.name} (job {self.jobid}): {self.problem or 'ok'}; {state}\ntimeline: {self.timeline}\n--- stderr:\n{tail(self.err, 30)}\n"
                f"--- stdout:\n{tail(self.out, 3)}")


def drive(cluster, jobs, timeout):
    """Warn each job once it is well under way, let the time-limit job's rerun finish, and
    wait for all to end."""
    started = time.monotonic()
    deadline = started + timeout
    running = list(jobs)
    while running:
        for j in list(running):
            j.info = cluster.job(j.jobid)
            state, restarts = j.info.get("JobState"), int(j.info.get("Restarts", "0"))
            if not j.timeline or j.timeline[-1][1:3] != (state, restarts):
                j.timeline.append((round(time.monotonic() - started, 1), state, restarts, j.steps_done()))
            if state in ENDED:
                running.remove(j)
            elif restarts > 3:
                j.problem = "requeued again and again"
                running.remove(j)
            elif j.warning == "scancel" and j.warned_at_step < 0 and state == "RUNNING" and restarts == 0 and j.steps_done() >= 150:
                j.warned_at_step = j.steps_done()
                cluster.command("scancel", "--signal=USR1", "--batch", str(j.jobid))
            elif j.warning == "time limit" and restarts >= 1 and not j.extended:
                # Warned once by the limit: let the rerun finish rather than be warned again.
                cluster.command("scontrol", "update", f"JobId={j.jobid}", "TimeLimit=10")
                j.extended = True
        if time.monotonic() > deadline:
            for j in running:
                j.problem = f"still {j.info.get('JobState')} after {timeout} s"
            return
        time.sleep(0.25)


VERSIONS = ["3.11", "3.12", "3.13"]
NAMES = [f"py{v}" for v in VERSIONS] + ["py3.12-time-limit"]


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory):
    """Start the cluster, submit one job per version (warned by the test) and one warned by
    its time limit, alongside plain runs of the same programs; all of it at once (about a
    minute), then stop everything."""
    for name in PROGRAMS:
        program(name)
    base = tmp_path_factory.mktemp("slurm")
    cluster = Cluster(base / "cluster")
    cluster.base.mkdir()
    jobs = [Submitted(f"py{v}", v, "scancel", SIGNAL_STEPS, base / f"py{v}") for v in VERSIONS]
    jobs.append(Submitted("py3.12-time-limit", "3.12", "time limit", TIME_LIMIT_STEPS, base / "py3.12-time-limit"))
    plains = {}
    try:
        t = time.monotonic()
        cluster.start()
        print(f"cluster up in {time.monotonic() - t:.1f} s")
        for j in jobs:
            key = (j.version, j.steps)
            if key not in plains:
                with open(base / f"plain-{j.version}-{j.steps}.out", "w") as out:  # a file, never a pipe left unread
                    plains[key] = subprocess.Popen([venv(j.version, "python"), str(JOB), str(j.steps)], stdout=out,
                                                   stderr=subprocess.STDOUT)
            j.base.mkdir()
            (j.base / "job.sh").write_text(j.script())
            j.jobid = int(cluster.command("sbatch", "--parsable", str(j.base / "job.sh")).stdout.strip().split(";")[0])
        drive(cluster, jobs, timeout=240)
        for j in jobs:
            print(f"{j.name}: {j.timeline}")
        expected = {}
        for (version, steps), p in plains.items():
            out = base / f"plain-{version}-{steps}.out"
            assert p.wait(timeout=120) == 0, tail(out)
            expected[(version, steps)] = PID.sub("", out.read_text())
        yield {j.name: (j, expected[(j.version, j.steps)]) for j in jobs}
    finally:
        for p in plains.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        t = time.monotonic()
        problems = cluster.stop()
        print(f"cluster down in {time.monotonic() - t:.1f} s")
        assert not problems, problems


@pytest.mark.parametrize("name", NAMES)
def test_a_warned_slurm_job_is_requeued_and_resumes_from_its_checkpoint(slurm_runs, name):
    job, plain = slurm_runs[name]
    assert not job.problem, job.report()
    assert job.info["JobState"] == "COMPLETED" and job.info["ExitCode"] == "0:0", job.report()
    assert int(job.info["Restarts"]) >= 1, job.report()
    err = job.err.read_text()
    runs = err.count("pyteleport run: started the job") + err.count("pyteleport run: resumed ")
    assert err.count("pyteleport run: started the job") == 1 and runs == 1 + int(job.info["Restarts"]), job.report()
    assert re.search(r"checkpoint \d+ \(signal\) written", err) and f"requeued Slurm job {job.jobid}" in err, job.report()
    assert re.search(r"resumed \S+/checkpoints/\d+/ckpt-\d+\.snap", err), job.report()
    assert "the job exited with status 0" in err, job.report()
    out = PID.sub("", job.out.read_text())
    if job.warning == "scancel":
        assert job.warned_at_step >= 150, job.report()
    # Appended across the runs: nothing lost or done twice, as if it had never stopped.
    assert out == plain, job.report()
