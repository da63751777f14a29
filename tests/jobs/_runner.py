"""Realistic-jobs suite: unmodified programs in their own venvs, run plainly and through
pyteleport (attach-move, checkpoint-restore, checkpoint-continue), compared with the plain run.

Started by `scripts/jobs` (see its header for the options). Every job is a file
`tests/jobs/<name>.py` (names starting with `_` are not jobs). The job venvs
`.venvs/jobs-X.Y` hold `tests/jobs/requirements.txt` and deliberately no pyteleport.

pyteleport is taken from the build under the pyteleport root (`--pyteleport-root`, env
`PYTELEPORT_ROOT`, default: this repository): the entry points `.venvs/pyX.Y/bin/pyteleport-attach`
and `.venvs/pyX.Y/bin/pyteleport` that `scripts/setup` installs. Those run the binary bundled in
the package, which finds its own site-packages and puts it first on the new process's
PYTHONPATH; the bare `target/release/pyteleport-attach` is a development build that finds no
pyteleport package for a program whose venv has none (its new process fails with
`No module named 'pyteleport'`), so it is only checked for and recorded, not used.

Statuses: pass, refused (attach exited non-zero and the job went on to exactly the plain
output and exit code), fail (anything else: wrong or lost output, a hang, a crash), and
skip (the harness could not make a fair test, e.g. the job ended before the attach).
"""
import argparse
import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS_DIR = ROOT / "tests" / "jobs"
MODES = ["plain", "attach-move", "checkpoint-restore", "checkpoint-continue"]
VERSIONS = ["3.11", "3.12", "3.13"]
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"))
ATTACH_TIMEOUT = 60          # seconds for one pyteleport-attach command
MIN_JOB_TIMEOUT = 40         # seconds for one job run (or 6x its plain duration)


def die(msg):
    print(f"scripts/jobs: error: {msg}", file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------------ environment

def interpreter(version):
    """The real CPython X.Y binary under pyenv (never the slow pyenv shim on PATH)."""
    for d in sorted(PYENV_ROOT.glob(f"versions/{version}.*")):
        exe = d / "bin" / f"python{version}"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    die(f"CPython {version} not found under {PYENV_ROOT}/versions")


def job_venv(version, reinstall=False):
    """`.venvs/jobs-X.Y` with the jobs' requirements and without pyteleport."""
    venv = ROOT / ".venvs" / f"jobs-{version}"
    py = venv / "bin" / "python"
    req = JOBS_DIR / "requirements.txt"
    stamp = venv / ".jobs-requirements.sha256"
    want = hashlib.sha256(req.read_bytes()).hexdigest()
    if not py.exists():
        print(f"creating {venv.relative_to(ROOT)}", flush=True)
        subprocess.run([str(interpreter(version)), "-m", "venv", str(venv)], check=True)
    if reinstall or not stamp.exists() or stamp.read_text().strip() != want:
        print(f"installing {req.relative_to(ROOT)} into {venv.relative_to(ROOT)}", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(req)], check=True)
        stamp.write_text(want + "\n")
    probe = subprocess.run([str(py), "-c", "import importlib.util, sys, numpy, pandas, tqdm;"
                            "print(sys.version.split()[0], numpy.__version__, pandas.__version__, tqdm.__version__);"
                            "sys.exit(3 if importlib.util.find_spec('pyteleport') else 0)"],
                           capture_output=True, text=True, env=clean_env())
    if probe.returncode == 3:
        die(f"{venv} can import pyteleport: the job venvs must not have it")
    if probe.returncode != 0:
        die(f"{venv} is broken: {probe.stderr.strip().splitlines()[-1:]}")
    return py, probe.stdout.split()


def pyteleport_tools(pt_root, version):
    venv = pt_root / ".venvs" / f"py{version}"
    attach = venv / "bin" / "pyteleport-attach"
    restore = venv / "bin" / "pyteleport"
    for p in (attach, restore):
        if not (p.is_file() and os.access(p, os.X_OK)):
            die(f"{p} is missing: run scripts/setup in {pt_root} (or pass --pyteleport-root)")
    bundled = glob.glob(str(venv / "lib" / f"python{version}" / "site-packages" / "pyteleport" / "_bin" / "pyteleport"))
    if not bundled:
        die(f"{venv} has no bundled pyteleport binary")
    return str(attach), str(restore), bundled[0]


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTELEPORT"))}
    env.pop("PYENV_VERSION", None)
    env["LC_ALL"] = env.get("LC_ALL", "C.UTF-8")
    return env


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


# --------------------------------------------------------------------------- running

class Run:
    """One process whose stdout/stderr go to files; killed only by its own pid."""

    def __init__(self, argv, workdir, tag, env, stdout=None, stderr=None):
        self.out_path = Path(stdout or workdir / f"{tag}.out")
        self.err_path = Path(stderr or workdir / f"{tag}.err")
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=env)
        self.pid = self.proc.pid
        self.duration = None
        self.hung = False

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.hung = True
            self.kill()
            rc = self.proc.returncode
        self.duration = time.monotonic() - self.start
        self.out.close()
        self.err.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def read(path):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""


def is_python(pid, version):
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return exe if os.path.basename(exe).startswith(f"python{version}") else False


def attach_cmd(attach, pid, extra, workdir, tag, env):
    """Run pyteleport-attach on `pid`; returns (rc or None if it hung, stderr text)."""
    err_path = workdir / f"{tag}.attach.err"
    with open(err_path, "wb") as err, open(workdir / f"{tag}.attach.out", "wb") as out:
        p = subprocess.Popen([attach, str(pid), *extra], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        try:
            rc = p.wait(ATTACH_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()  # the attacher itself; its tracer child cancels or completes on its own
            p.wait()
            rc = None
    return rc, read(err_path).decode(errors="replace")


def moved_to(attach_err):
    m = re.search(r"moved to process (\d+)", attach_err)
    return int(m.group(1)) if m else None


def kill_stray(pid, marker):
    """Kill a new process pyteleport started for us (not our child) if it is still alive
    and is really ours: its command line names the restore engine or the job."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"pyteleport" in cmdline or marker.encode() in cmdline:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- judging

def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def attach_reason(err):
    for line in err.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


def new_trouble(stderr, reference):
    """The telling line of stderr output that the reference does not have (a traceback's
    last line, a fatal error, ...), or ''."""
    ref = set(reference.splitlines())
    extra = [l for l in stderr.splitlines() if l not in ref and l.strip()]
    if not extra:
        return ""
    for l in reversed(extra):
        if re.match(r"^[A-Za-z_.]+(Error|Exception|Interrupt|Exit)\b|^Fatal|^Segmentation|^pyteleport", l.strip()):
            return l.strip()
    return extra[-1].strip()


def diff_reason(got, want, what="stdout"):
    g, w = got.decode(errors="replace").splitlines(), want.decode(errors="replace").splitlines()
    for i, (a, b) in enumerate(zip(g, w)):
        if a != b:
            return f"{what} line {i + 1}: expected {b[:60]!r}, got {a[:60]!r}"
    if len(g) < len(w):
        return f"{what} lost {len(w) - len(g)} of {len(w)} lines (next expected {w[len(g)][:60]!r})"
    if len(g) > len(w):
        return f"{what} has {len(g) - len(w)} extra lines (first {g[len(w)][:60]!r})"
    return f"{what} differs (line endings or a partial line)"


def signal_name(rc):
    if rc is not None and rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return str(rc)
    return str(rc)


# ------------------------------------------------------------------------------ modes

class Case:
    def __init__(self, job, version, py, tools, ref, workroot, env, rng):
        self.job, self.version, self.py, self.ref = job, version, py, ref
        self.attach, self.restore, _ = tools
        self.workroot, self.env, self.rng = workroot, env, rng
        self.script = str(JOBS_DIR / f"{job}.py")
        self.timeout = max(MIN_JOB_TIMEOUT, 6 * ref["duration"])

    def workdir(self, mode):
        d = self.workroot / self.job / self.version / mode
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def start_job(self, d, tag="job"):
        run = Run([str(self.py), self.script], d, tag, self.env)
        time.sleep(0.05)
        if is_python(run.pid, self.version) is False:
            run.kill()
            raise RuntimeError(f"harness: pid {run.pid} is not the job's interpreter")
        return run

    def delay(self):
        hi = min(2.0, max(0.6, 0.6 * self.ref["duration"]))
        return self.rng.uniform(0.5, hi)

    def err_ok(self, got, want):
        return (not self.ref["stderr_checked"]) or got == want

    def result(self, status, reason, **extra):
        return {"status": status, "reason": reason, **extra}

    def judge_untouched(self, run, rc, attach_rc, attach_err, what):
        """After a refused attach: did the job go on to the plain output, untouched?"""
        out, err = read(run.out_path), read(run.err_path).decode(errors="replace")
        why = attach_reason(attach_err) if attach_rc is not None else "attach hung"
        if run.hung:
            return self.result("fail", f"{what} (attach: {why}); the job then hung")
        if out != self.ref["stdout"]:
            return self.result("fail", f"{what} (attach: {why}); {diff_reason(out, self.ref['stdout'])}")
        if rc != self.ref["rc"]:
            return self.result("fail", f"{what} (attach: {why}); job exit {signal_name(rc)} != {self.ref['rc']}")
        if not self.err_ok(err.encode(), self.ref["stderr"]):
            return self.result("fail", f"{what} (attach: {why}); the job's stderr got "
                                       f"{new_trouble(err, self.ref['stderr'].decode(errors='replace'))!r}")
        if attach_rc is None:
            return self.result("fail", "attach hung (killed after %ds); the job went on untouched" % ATTACH_TIMEOUT)
        return self.result("refused", why)

    def attach_move(self):
        d = self.workdir("attach-move")
        run = self.start_job(d)
        delay = self.delay()
        time.sleep(delay)
        if run.proc.poll() is not None:
            run.wait(1)
            return self.result("skip", f"harness: the job ended before the attach ({delay:.2f}s)")
        attach_rc, attach_err = attach_cmd(self.attach, run.pid, [], d, "move", self.env)
        rc = run.wait(self.timeout)
        kill_stray(moved_to(attach_err), self.script)
        extra = {"delay": round(delay, 3), "attach_rc": attach_rc}
        # attach passes on the new process's exit status: whether it moved is in what it said
        if moved_to(attach_err) is None:
            return {**self.judge_untouched(run, rc, attach_rc, attach_err, "refused"), **extra}
        out, err = read(run.out_path), read(run.err_path)
        ref_err = self.ref["stderr"].decode(errors="replace")
        trouble = new_trouble(err.decode(errors="replace"), ref_err)
        if run.hung:
            return self.result("fail", f"moved, then hung (killed after {self.timeout:.0f}s)"
                               + (f"; stderr: {trouble}" if trouble else ""), **extra)
        if out != self.ref["stdout"]:
            return self.result("fail", diff_reason(out, self.ref["stdout"]) + (f"; stderr: {trouble}" if trouble else "")
                               + (f"; exit {signal_name(rc)}" if rc != self.ref["rc"] else ""), **extra)
        if rc != self.ref["rc"]:
            return self.result("fail", f"exit {signal_name(rc)} != {self.ref['rc']}" + (f"; stderr: {trouble}" if trouble else ""), **extra)
        if not self.err_ok(err, self.ref["stderr"]):
            return self.result("fail", diff_reason(err, self.ref["stderr"], "stderr"), **extra)
        return self.result("pass", "", **extra)

    def run_restore(self, d, snap, tag):
        run = Run([self.restore, "restore", str(snap)], d, tag, self.env)
        rc = run.wait(self.timeout)
        return run, rc

    def checkpoint_restore(self):
        d = self.workdir("checkpoint-restore")
        snap = d / "job.snap"
        run = self.start_job(d)
        delay = self.delay()
        time.sleep(delay)
        if run.proc.poll() is not None:
            run.wait(1)
            return self.result("skip", f"harness: the job ended before the attach ({delay:.2f}s)")
        attach_rc, attach_err = attach_cmd(self.attach, run.pid, ["--checkpoint", str(snap), "--exit"], d, "ckpt", self.env)
        rc = run.wait(self.timeout)
        extra = {"delay": round(delay, 3), "attach_rc": attach_rc}
        if attach_rc != 0 or "checkpoint written" not in attach_err:
            return {**self.judge_untouched(run, rc, attach_rc, attach_err, "refused"), **extra}
        if run.hung:
            return self.result("fail", "checkpoint --exit: the original did not end", **extra)
        if not snap.exists():
            return self.result("fail", "checkpoint --exit succeeded but wrote no snapshot", **extra)
        rrun, rrc = self.run_restore(d, snap, "restore")
        out = read(run.out_path) + read(rrun.out_path)
        err = read(run.err_path) + read(rrun.err_path)
        trouble = new_trouble(read(rrun.err_path).decode(errors="replace"), self.ref["stderr"].decode(errors="replace"))
        t = f"; restore stderr: {trouble}" if trouble else ""
        if rrun.hung:
            return self.result("fail", f"restore hung (killed after {self.timeout:.0f}s){t}", **extra)
        if out != self.ref["stdout"]:
            return self.result("fail", diff_reason(out, self.ref["stdout"]) + t
                               + (f"; restore exit {signal_name(rrc)}" if rrc != self.ref["rc"] else ""), **extra)
        if rrc != self.ref["rc"]:
            return self.result("fail", f"restore exit {signal_name(rrc)} != {self.ref['rc']}{t}", **extra)
        if not self.err_ok(err, self.ref["stderr"]):
            return self.result("fail", diff_reason(err, self.ref["stderr"], "stderr"), **extra)
        return self.result("pass", "", **extra)

    def checkpoint_continue(self):
        d = self.workdir("checkpoint-continue")
        snap = d / "job.snap"
        run = self.start_job(d)
        delay = self.delay()
        time.sleep(delay)
        if run.proc.poll() is not None:
            run.wait(1)
            return self.result("skip", f"harness: the job ended before the attach ({delay:.2f}s)")
        attach_rc, attach_err = attach_cmd(self.attach, run.pid, ["--checkpoint", str(snap)], d, "ckpt", self.env)
        rc = run.wait(self.timeout)
        extra = {"delay": round(delay, 3), "attach_rc": attach_rc}
        if attach_rc != 0 or "checkpoint written" not in attach_err:
            return {**self.judge_untouched(run, rc, attach_rc, attach_err, "refused"), **extra}
        out, err = read(run.out_path), read(run.err_path)
        if run.hung:
            return self.result("fail", "after the checkpoint the original hung", **extra)
        if out != self.ref["stdout"] or rc != self.ref["rc"] or not self.err_ok(err, self.ref["stderr"]):
            why = (diff_reason(out, self.ref["stdout"]) if out != self.ref["stdout"] else
                   f"exit {signal_name(rc)}" if rc != self.ref["rc"] else diff_reason(err, self.ref["stderr"], "stderr"))
            return self.result("fail", f"the original after the checkpoint: {why}", **extra)
        if not snap.exists():
            return self.result("fail", "checkpoint succeeded but wrote no snapshot", **extra)
        rrun, rrc = self.run_restore(d, snap, "restore")
        rout, rerr = read(rrun.out_path), read(rrun.err_path)
        trouble = new_trouble(rerr.decode(errors="replace"), self.ref["stderr"].decode(errors="replace"))
        t = f"; restore stderr: {trouble}" if trouble else ""
        res = self._continue_verdict(rrun, rrc, rout, rerr, trouble, t, extra)
        external = "jobs: external-state" in Path(self.script).read_text()
        if res["status"] == "fail" and external and ("FileNotFoundError" in trouble or "No such file" in trouble
                                                           or "unable to open database file" in trouble):
            # Not pyteleport's doing: the original ran to its end and removed the files the
            # checkpoint still has open before the restore ran.
            return self.result("skip", f"external state: the original removed its files before the restore ({trouble})", **extra)
        return res

    def _continue_verdict(self, rrun, rrc, rout, rerr, trouble, t, extra):
        if rrun.hung:
            return self.result("fail", f"restore hung (killed after {self.timeout:.0f}s){t}", **extra)
        ref_out = self.ref["stdout"]
        suffix_ok = ref_out.endswith(rout) and (len(rout) == len(ref_out) or ref_out[len(ref_out) - len(rout) - 1:][:1] == b"\n")
        if not rout:
            return self.result("fail", f"restore wrote no stdout (exit {signal_name(rrc)}){t}", **extra)
        if not suffix_ok:
            # where the restore's output leaves the plain output's tail
            lines = rout.decode(errors="replace").splitlines()
            ref_lines = ref_out.decode(errors="replace").splitlines()
            start = ref_lines.index(lines[0]) if lines and lines[0] in ref_lines else None
            if start is None:
                why = f"restore stdout starts with {lines[0][:60]!r}, not a plain line"
            else:
                why = diff_reason(rout, "\n".join(ref_lines[start:]).encode() + b"\n", "restore stdout (from its first line)")
            return self.result("fail", why + t + (f"; restore exit {signal_name(rrc)}" if rrc != self.ref["rc"] else ""), **extra)
        if rrc != self.ref["rc"]:
            return self.result("fail", f"restore exit {signal_name(rrc)} != {self.ref['rc']}{t}", **extra)
        if self.ref["stderr_checked"] and not self.ref["stderr"].endswith(rerr):
            return self.result("fail", f"restore stderr is not a tail of the plain stderr: {trouble or first_line(rerr.decode(errors='replace'))!r}", **extra)
        return self.result("pass", "", restored_lines=rout.count(b"\n"), **extra)


def plain_reference(job, version, py, workroot, env):
    """Two plain runs: the reference, and the proof that the job is deterministic."""
    d = workroot / job / version / "plain"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    runs = []
    for k in (1, 2):
        r = Run([str(py), str(JOBS_DIR / f"{job}.py")], d, f"plain{k}", env)
        rc = r.wait(120)
        runs.append((r, rc))
    (a, rca), (b, rcb) = runs
    source = (JOBS_DIR / f"{job}.py").read_text()
    ref = {
        "stdout": read(a.out_path), "stderr": read(a.err_path), "rc": rca,
        "duration": max(a.duration, b.duration),
        "stderr_checked": "jobs: stderr-nondeterministic" not in source and read(a.err_path) == read(b.err_path),
    }
    if a.hung or b.hung:
        return ref, {"status": "fail", "reason": "harness: the plain run hung"}
    if read(a.out_path) != read(b.out_path):
        return ref, {"status": "fail", "reason": "harness: two plain runs differ: " + diff_reason(read(b.out_path), read(a.out_path))}
    if rca != rcb:
        return ref, {"status": "fail", "reason": f"harness: plain exit codes differ ({rca}, {rcb})"}
    if rca != 0:
        return ref, {"status": "fail", "reason": f"the plain run exits {rca}: {new_trouble(read(a.err_path).decode(errors='replace'), '')}"}
    return ref, {"status": "pass", "reason": "", "duration": round(ref["duration"], 2),
                 "stdout_lines": ref["stdout"].count(b"\n"), "stderr_checked": ref["stderr_checked"]}


# ---------------------------------------------------------------------------- report

def summarize(results, versions, modes):
    lines = []
    w = max([len(j) for j in {r["job"] for r in results}] + [4])
    header = f"{'job':<{w}} {'ver':<5} " + " ".join(f"{m:<19}" for m in modes)
    lines.append(header)
    lines.append("-" * len(header))
    by = {(r["job"], r["version"], r["mode"]): r for r in results}
    for job in sorted({r["job"] for r in results}):
        for v in versions:
            cells = [by.get((job, v, m), {}).get("status", "-") for m in modes]
            lines.append(f"{job:<{w}} {v:<5} " + " ".join(f"{c:<19}" for c in cells))
    lines.append("")
    lines.append("reasons:")
    for r in results:
        if r["status"] != "pass":
            lines.append(f"  {r['job']} {r['version']} {r['mode']}: {r['status']}: {r['reason']}")
    lines.append("")
    counts = {}

    def tally(key, r):
        c = counts.setdefault(key, {"pass": 0, "refused": 0, "fail": 0, "skip": 0})
        c[r["status"]] += 1

    for r in results:
        tally(("all",), r)
        tally(("mode", r["mode"]), r)
        tally(("version", r["version"]), r)
        tally(("mode+version", r["mode"], r["version"]), r)
        if r["mode"] != "plain":
            tally(("teleport",), r)

    def fmt(c):
        n = sum(c.values())
        return (f"pass {c['pass']:3d}  refused {c['refused']:3d}  fail {c['fail']:3d}  skip {c['skip']:2d}  "
                f"pass rate {100.0 * c['pass'] / n if n else 0:5.1f}% of {n}")

    lines.append("summary:")
    lines.append(f"  {'overall (all modes)':<34} {fmt(counts[('all',)])}")
    if ("teleport",) in counts:
        lines.append(f"  {'overall (teleport modes only)':<34} {fmt(counts[('teleport',)])}")
    for m in modes:
        if ("mode", m) in counts:
            lines.append(f"  {'mode ' + m:<34} {fmt(counts[('mode', m)])}")
    for v in versions:
        if ("version", v) in counts:
            lines.append(f"  {'version ' + v:<34} {fmt(counts[('version', v)])}")
    for m in modes:
        for v in versions:
            if ("mode+version", m, v) in counts:
                lines.append(f"  {m + ' ' + v:<34} {fmt(counts[('mode+version', m, v)])}")
    return "\n".join(lines), {" ".join(k): v for k, v in counts.items()}


def main():
    all_jobs = sorted(p.stem for p in JOBS_DIR.glob("*.py") if not p.name.startswith("_"))
    ap = argparse.ArgumentParser(prog="scripts/jobs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", nargs="+", default=VERSIONS, metavar="X.Y")
    ap.add_argument("--jobs", nargs="+", default=all_jobs, metavar="NAME", help=f"default: all ({' '.join(all_jobs)})")
    ap.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    ap.add_argument("--seed", type=int, default=1, help="seed of the random attach moments")
    ap.add_argument("--pyteleport-root", default=os.environ.get("PYTELEPORT_ROOT", str(ROOT)),
                    help="the pyteleport checkout whose build and .venvs/pyX.Y are used (default: this repository)")
    ap.add_argument("--reinstall", action="store_true", help="reinstall the job venvs' requirements")
    ap.add_argument("--out", default=str(ROOT / "target" / "jobs" / "results.json"))
    args = ap.parse_args()
    versions = [v for part in args.versions for v in part.split(",") if v]
    jobs = [j for part in args.jobs for j in part.split(",") if j]
    for j in jobs:
        if j not in all_jobs:
            die(f"no job {j!r} (jobs: {' '.join(all_jobs)})")
    modes = ["plain"] + [m for m in args.modes if m != "plain"]  # every mode needs the plain reference
    pt_root = Path(args.pyteleport_root).resolve()
    dev_attach = pt_root / "target" / "release" / "pyteleport-attach"
    if not dev_attach.is_file():
        die(f"{dev_attach} is missing: build pyteleport first (scripts/setup in {pt_root})")

    workroot = ROOT / "target" / "jobs" / "runs"
    workroot.mkdir(parents=True, exist_ok=True)
    env = clean_env()
    setup = {}
    tools = {}
    for v in versions:
        py, info = job_venv(v, args.reinstall)
        tools[v] = pyteleport_tools(pt_root, v)
        setup[v] = {"python": str(py), "cpython": info[0], "numpy": info[1], "pandas": info[2], "tqdm": info[3],
                    "attach": tools[v][0], "restore": tools[v][1], "bundled_binary": tools[v][2],
                    "bundled_binary_sha256": sha256(tools[v][2]), "target_release_attach_sha256": sha256(dev_attach)}
        print(f"CPython {info[0]}: numpy {info[1]}, pandas {info[2]}, tqdm {info[3]}; pyteleport {tools[v][0]}", flush=True)

    results = []
    t0 = time.monotonic()
    for job in jobs:
        for v in versions:
            py = setup[v]["python"]
            rng = random.Random(f"{args.seed}:{job}:{v}")
            ref, res = plain_reference(job, v, py, workroot, env)
            rows = [{"job": job, "version": v, "mode": "plain", **res}]
            if res["status"] == "pass":
                case = Case(job, v, py, tools[v], ref, workroot, env, rng)
                for m in modes[1:]:
                    try:
                        r = {"attach-move": case.attach_move, "checkpoint-restore": case.checkpoint_restore,
                             "checkpoint-continue": case.checkpoint_continue}[m]()
                    except Exception as e:  # a harness bug must not pass for a pyteleport failure
                        r = {"status": "skip", "reason": f"harness error: {type(e).__name__}: {e}"}
                    rows.append({"job": job, "version": v, "mode": m, **r})
            else:
                for m in modes[1:]:
                    rows.append({"job": job, "version": v, "mode": m, "status": "skip", "reason": "no plain reference"})
            for r in rows:
                print(f"{r['job']:<22} {r['version']:<5} {r['mode']:<20} {r['status']:<8} {r['reason'][:150]}", flush=True)
            results.extend(rows)
    changed = [v for v in versions if sha256(tools[v][2]) != setup[v]["bundled_binary_sha256"]]
    if changed:
        print(f"WARNING: the pyteleport binary of {', '.join(changed)} changed during the run", flush=True)
    table, counts = summarize(results, versions, modes)
    print()
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "versions": versions, "modes": modes, "jobs": jobs,
                               "pyteleport_root": str(pt_root), "setup": setup, "elapsed_s": round(time.monotonic() - t0, 1),
                               "binary_changed_during_run": changed, "results": results, "counts": counts}, indent=1) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
