#!/root/.pyenv/versions/3.11.7/bin/python3.11
"""Benchmark: `pyteleport attach` against CRIU on the same Python program.

Run as root:  scripts/bench_attach.py [--runs 10] [--criu-runs 10] [--lines 200] [--no-criu]
(any Python >= 3.8 can run this driver; the *target* always runs on CPython 3.11,
/root/.pyenv/versions/3.11.7/bin/python3.11, never `python3` from PATH).

The target (scripts/bench_attach/target.py) builds a 20-deep recursion, then runs a
pure-Python busy loop printing `progress I ACC` lines (~5 ms of work apart) and `done ACC`. Its
output is deterministic, so every moved/restored run is checked against a plain run.
Each measurement starts once the target has printed 3 progress lines.

pyteleport (target on the host, stdout a pipe read by this script, lines timestamped):
  * checkpoint: `target/release/pyteleport attach PID --checkpoint FILE --python VENV_PY`;
    pause = "target paused X ms" from its stderr, total = wall time of the command, size
    = the snapshot file. The original must then finish with the plain run's output.
    The snapshot is also resumed (`pyteleport restore FILE --python VENV_PY`): time until
    its first progress line, and its output must be a suffix of the plain run's.
  * migration: `pyteleport attach PID --python VENV_PY`; pause = "paused X ms before the
    new process started" from its stderr, total = attach start until the first progress
    line printed after that message (i.e. by the new process). The whole stdout must
    equal the plain run's, the original must exit 0.

CRIU (Debian 12's criu fails on this kernel, so CRIU 4.x from Debian sid runs from a
chroot; the host's apt sources are never changed):
  * chroot, built once and cached in target/criu-chroot (mmdebstrap is apt-installed on
    the host when missing):
        mmdebstrap --variant=apt --include=criu \\
            --aptopt='Acquire::Check-Valid-Until "false"' sid target/criu-chroot
  * mounts, made for the run and removed at the end (stale ones from a killed run are
    removed first):
        mount --bind C C                     (C = target/criu-chroot; CRIU must see the
                                              chroot's root as a mount, else "mnt: No
                                              parent found for mountpoint")
        mount --bind /proc C/proc; mount --bind /sys C/sys; mount --bind /dev C/dev
        mount --bind /root/.pyenv/versions/3.11.7 C/root/.pyenv/versions/3.11.7
  * the target runs *inside* the chroot (same interpreter binary, same target.py copied
    to C/bench/), so that every file it maps (python, libc, ...) resolves identically for
    criu; a host process cannot be dumped by a chrooted criu (its mounts and libraries
    are outside criu's root). Its stdout/stderr are files inside the chroot (CRIU
    reopens them on restore at the dumped offset), stdin is the chroot's /dev/null, and
    it is started with close_fds so that no foreign descriptor gets into the image:
        chroot C /bin/sh -c 'cd /bench && exec PY /bench/target.py N >/bench/out.txt 2>/bench/err.txt </dev/null'
  * checkpoint-like: chroot C criu dump -t PID --shell-job --leave-running -D /bench/img
        --display-stats -o /bench/log/dump.log
    pause = "Frozen time" from --display-stats, total = wall time, size = du -sb of the
    images (logs are written outside the image dir). The original must finish with the
    plain run's output. (Restoring such an image later fails by design: criu refuses the
    output file, which grew since — "File bench/out.txt has bad size".)
  * migration: chroot C criu dump -t PID --shell-job -D /bench/img ...   (kills the
    target; this script reaps it so that its pid is free), then
        chroot C criu restore --shell-job -d -D /bench/img --display-stats -o ...
    dump time, restore time (wall time of `restore -d`, which returns once the restored
    process runs), pause = dump start until restore returned, total = dump start until
    the first new progress line in the output file (polled every 0.5 ms). The final
    output must equal the plain run's.
  criu prints "rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted" on
  this machine: harmless. When CRIU cannot be set up or run, the reason (error text) is
  reported in the table and the JSON instead of failing.

Writes target/bench/attach.json (every run) and target/bench/attach.md (the table);
with --threads N (N > 1: the target runs N threads, the others waiting a few frames
deep), attach-threadsN.json and .md.
Only processes this script started are ever killed, by pid.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = os.path.join(ROOT, "scripts", "bench_attach")
TARGET = os.path.join(HELPERS, "target.py")
OUT_DIR = os.path.join(ROOT, "target", "bench")
WORK = os.path.join(ROOT, "target", "bench", "attach-work")
BIN = os.path.join(ROOT, "target", "release", "pyteleport")
VENV_PY = os.path.join(ROOT, ".venvs", "py3.11", "bin", "python")
PYENV_ROOT = os.environ.get("PYENV_ROOT", "/root/.pyenv")
CHROOT = os.path.join(ROOT, "target", "criu-chroot")
DEPTH = 20
THREADS = 1  # --threads
WORK_ITERS = 20000  # inner-loop iterations per progress line (~4.5 ms on this machine)
WARM_LINES = 3  # progress lines the target prints before each measurement

STARTED = set()  # pids of processes this script started (targets, restored targets)


def find_python():
    base = os.path.join(PYENV_ROOT, "versions")
    cands = sorted(d for d in (os.listdir(base) if os.path.isdir(base) else []) if d.startswith("3.11."))
    for d in reversed(cands):
        exe = os.path.join(base, d, "bin", "python3.11")
        if os.access(exe, os.X_OK):
            return os.path.realpath(exe)
    sys.exit("bench_attach: CPython 3.11 not found under %s/versions" % PYENV_ROOT)


PY = find_python()
PY_PREFIX = os.path.dirname(os.path.dirname(PY))  # e.g. /root/.pyenv/versions/3.11.7


def log(*a):
    print("bench_attach:", *a, file=sys.stderr, flush=True)


def kill_started(pid):
    """SIGKILL a process this script started, if still there (never anything else)."""
    if pid in STARTED:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(p):
    """End a child started by this script (Popen): SIGKILL if it still runs, reap it."""
    if p is None:
        return
    if p.poll() is None:
        kill_started(p.pid)
        p.wait()
    STARTED.discard(p.pid)


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


# ---------------------------------------------------------------- setup


def binary_id():
    """sha256 prefix and mtime of our binary, and the git state (the tree may change between runs)."""
    import hashlib
    with open(BIN, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()[:16]
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return {"sha256": sha, "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(BIN)).isoformat(timespec="seconds"),
            "git": git.stdout.strip()}


def ensure_ours():
    ok = os.access(BIN, os.X_OK) and subprocess.run(
        [VENV_PY, "-c", "import pyteleport._native"], capture_output=True).returncode == 0 \
        if os.access(VENV_PY, os.X_OK) else False
    if not ok:
        log("our venvs or binary are missing: running scripts/setup")
        subprocess.run([os.path.join(ROOT, "scripts", "setup")], check=True, stdout=sys.stderr)


class Lines:
    """Reads a stream line by line in a thread, timestamping each line (perf_counter)."""

    def __init__(self, stream):
        self.lines = []  # (t, text)
        self.cond = threading.Condition()
        self.eof = False
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            t = time.perf_counter()
            with self.cond:
                self.lines.append((t, raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait(self, cond, timeout):
        """Wait until cond(lines) returns something other than None (and return it);
        None at timeout or end of stream. lines: the (t, text) pairs read so far."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                got = cond(self.lines)
                left = deadline - time.perf_counter()
                if got is not None or self.eof or left <= 0:
                    return got
                self.cond.wait(left)

    def wait_for(self, pred, timeout):
        """The first (t, text) with pred(text), or None."""
        return self.wait(lambda ls: next(((t, s) for t, s in ls if pred(s)), None), timeout)

    def text(self):
        self.thread.join(5)
        return [s for _, s in self.lines]


class FileLines(Lines):
    """Follows a file (polled every 0.5 ms) like Lines follows a stream; stop() ends it."""

    def __init__(self, path):
        self.stopped = threading.Event()
        super().__init__(path)

    def _run(self, path):
        pos, buf = 0, b""
        while True:
            last = self.stopped.is_set()
            try:
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            t = time.perf_counter()
            if chunk:
                pos += len(chunk)
                buf += chunk
                *done, buf = buf.split(b"\n")
                with self.cond:
                    self.lines += [(t, d.decode(errors="replace")) for d in done]
                    self.cond.notify_all()
            if last:
                break
            time.sleep(0.0005)
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        return [s for _, s in self.lines]


def gap_after(lines, t_switch):
    """(first progress line after t_switch, gap from the last progress line before it), or (None, None)."""
    before = [t for t, s in lines if t <= t_switch and is_progress(s)]
    after = [t for t, s in lines if t > t_switch and is_progress(s)]
    if not after:
        return None, None
    return after[0], (after[0] - before[-1]) * 1e3 if before else None


def is_progress(s):
    return s.startswith("progress ")


def progress_count(n):
    """cond for Lines.wait: True once n progress lines were read."""
    return lambda ls: True if sum(1 for _, s in ls if is_progress(s)) >= n else None


def start_host_target(lines):
    p = subprocess.Popen([PY, TARGET, str(lines), str(DEPTH), str(WORK_ITERS), str(THREADS)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=WORK, close_fds=True)
    STARTED.add(p.pid)
    return p, Lines(p.stdout), Lines(p.stderr)


def plain_output(lines):
    """The plain run's output lines and its ms per progress line."""
    t0 = time.perf_counter()
    r = subprocess.run([PY, TARGET, str(lines), str(DEPTH), str(WORK_ITERS), str(THREADS)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        sys.exit("bench_attach: the plain target run failed: " + r.stderr)
    return r.stdout.splitlines(), (time.perf_counter() - t0) * 1e3 / lines


def finish(p, timeout):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_started(p.pid)
        p.wait()
        return None


# ---------------------------------------------------------------- pyteleport


def ours_checkpoint(i, lines, plain):
    r = {"run": i}
    snap = os.path.join(WORK, "snap-%d.bin" % i)
    if os.path.exists(snap):
        os.unlink(snap)
    p, out, err = start_host_target(lines)
    q = None
    try:
        if not out.wait(progress_count(WARM_LINES), 30):
            r["error"] = "target did not start: " + "\n".join(err.text())
            return r
        t0 = time.perf_counter()
        a = subprocess.run([BIN, "attach", str(p.pid), "--checkpoint", snap, "--python", VENV_PY],
                           capture_output=True, text=True, timeout=60)
        r["total_ms"] = (time.perf_counter() - t0) * 1e3
        m = re.search(r"checkpoint written to .* \(target paused ([\d.]+) ms\)", a.stderr)
        if a.returncode != 0 or not m:
            r["error"] = "attach --checkpoint: exit %s: %s" % (a.returncode, a.stderr.strip()[-500:])
            return r
        r["pause_ms"] = float(m.group(1))
        r["size_bytes"] = os.path.getsize(snap)
        rc = finish(p, 60)
        got = out.text()
        r["original_ok"] = rc == 0 and got == plain
        if not r["original_ok"]:
            r["error"] = "original after checkpoint: exit %s, %d lines (expected %d)" % (rc, len(got), len(plain))
        # resume the snapshot
        t0 = time.perf_counter()
        q = subprocess.Popen([BIN, "restore", snap, "--python", VENV_PY], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=WORK, close_fds=True)
        STARTED.add(q.pid)
        qo, qe = Lines(q.stdout), Lines(q.stderr)
        first = qo.wait_for(is_progress, 60)
        if first:
            r["restore_first_line_ms"] = (first[0] - t0) * 1e3
        rc = finish(q, 60)
        got = qo.text()
        r["restore_ok"] = rc == 0 and len(got) > 1 and got == plain[len(plain) - len(got):]
        if not r["restore_ok"]:
            r.setdefault("error", "restore: exit %s, output %r, stderr %r"
                         % (rc, got[:3], "\n".join(qe.text())[-500:]))
        return r
    finally:
        stop(p)
        stop(q)
        if os.path.exists(snap):
            os.unlink(snap)


def ours_migrate(i, lines, plain):
    r = {"run": i}
    p, out, err = start_host_target(lines)
    a = None
    try:
        if not out.wait(progress_count(WARM_LINES), 30):
            r["error"] = "target did not start: " + "\n".join(err.text())
            return r
        t0 = time.perf_counter()
        a = subprocess.Popen([BIN, "attach", str(p.pid), "--python", VENV_PY], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True)
        STARTED.add(a.pid)
        ae = Lines(a.stderr)
        pat = re.compile(r"process \d+ moved to process (\d+) \(paused ([\d.]+) ms before the new process started\)")
        moved = ae.wait_for(pat.search, 60)
        if not moved:
            a.wait(60)
            r["error"] = "attach: exit %s: %s" % (a.returncode, "\n".join(ae.text())[-500:])
            return r
        m = pat.search(moved[1])
        r["new_pid"] = int(m.group(1))
        r["pause_ms"] = float(m.group(2))
        r["attach_to_new_process_ms"] = (moved[0] - t0) * 1e3
        # the first progress line read after that message comes from the new process
        first = out.wait(lambda ls: next((t for t, s in ls if t > moved[0] and is_progress(s)), None), 30)
        if first is not None:
            r["total_ms"] = (first - t0) * 1e3
            with out.cond:
                r["output_gap_ms"] = gap_after(list(out.lines), moved[0])[1]
        rc = finish(p, 60)
        arc = finish(a, 60)
        got = out.text()
        r["exit_status"] = rc
        r["attach_exit_status"] = arc
        r["progress_lines"] = sum(1 for s in got if is_progress(s))
        r["ok"] = rc == 0 and arc == 0 and got == plain
        if not r["ok"]:
            r["error"] = "output differs from a plain run: exit %s, attach exit %s, %d lines (expected %d), last %r" % (
                rc, arc, len(got), len(plain), got[-1:])
        return r
    finally:
        stop(p)
        stop(a)


# ---------------------------------------------------------------- CRIU


class CriuUnavailable(Exception):
    pass


def sh(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def our_mounts():
    """Mount points under CHROOT (including itself), deepest first."""
    pts = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            mp = ln.split()[4].replace("\\040", " ")
            if mp == CHROOT or mp.startswith(CHROOT + "/"):
                pts.append(mp)
    return sorted(pts, key=len, reverse=True)


def unmount_all():
    for mp in our_mounts():
        r = sh(["umount", mp])
        if r.returncode != 0:
            sh(["umount", "-l", mp])


def ensure_chroot():
    criu = os.path.join(CHROOT, "usr", "sbin", "criu")
    if os.access(criu, os.X_OK):
        return
    if os.geteuid() != 0:
        raise CriuUnavailable("CRIU needs root (this script runs as uid %d)" % os.geteuid())
    if not shutil.which("mmdebstrap"):
        log("installing mmdebstrap on the host (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = sh(["apt-get", "update", "-qq"], env=env)
        r2 = sh(["apt-get", "install", "-y", "-qq", "mmdebstrap"], env=env) if r.returncode == 0 else r
        if r2.returncode != 0 or not shutil.which("mmdebstrap"):
            raise CriuUnavailable("apt-get install mmdebstrap failed: " + (r2.stderr or r2.stdout).strip()[-800:])
    unmount_all()
    partial = CHROOT + ".partial"
    if os.path.exists(partial):
        shutil.rmtree(partial)
    if os.path.exists(CHROOT):
        shutil.rmtree(CHROOT)
    log("building the CRIU chroot with mmdebstrap (Debian sid, ~30 s, ~250 MB) in", CHROOT)
    cmd = ["mmdebstrap", "--variant=apt", "--include=criu",
           "--aptopt=Acquire::Check-Valid-Until \"false\"", "sid", partial]
    r = sh(cmd, timeout=1800)
    if r.returncode != 0 or not os.access(os.path.join(partial, "usr", "sbin", "criu"), os.X_OK):
        raise CriuUnavailable("mmdebstrap failed (exit %d): %s" % (r.returncode, (r.stderr or r.stdout).strip()[-800:]))
    os.rename(partial, CHROOT)


def mount_chroot():
    unmount_all()
    steps = [(CHROOT, CHROOT)] + [("/" + d, os.path.join(CHROOT, d)) for d in ("proc", "sys", "dev")] \
        + [(PY_PREFIX, CHROOT + PY_PREFIX)]
    for src, dst in steps:
        os.makedirs(dst, exist_ok=True)
        r = sh(["mount", "--bind", src, dst])
        if r.returncode != 0:
            raise CriuUnavailable("mount --bind %s %s failed: %s" % (src, dst, r.stderr.strip()))
    shutil.rmtree(os.path.join(CHROOT, "bench"), ignore_errors=True)  # leftovers of earlier runs
    os.makedirs(os.path.join(CHROOT, "bench", "log"), exist_ok=True)
    shutil.copy(TARGET, os.path.join(CHROOT, "bench", "target.py"))


def criu(*args, timeout=120):
    t0 = time.perf_counter()
    r = sh(["chroot", CHROOT, "criu"] + list(args), timeout=timeout)
    return (time.perf_counter() - t0) * 1e3, r


def criu_error(what, r, logfile):
    text = (r.stderr + r.stdout).strip()
    host_log = CHROOT + logfile
    if os.path.exists(host_log):
        with open(host_log, errors="replace") as f:
            errs = [ln.rstrip() for ln in f if "Error" in ln]
        if errs:
            text += "\n" + "\n".join(errs[-6:])
    return "%s failed (exit %d): %s" % (what, r.returncode, text[-1200:])


def stat_us(text, name):
    m = re.search(re.escape(name) + r":\s*(\d+) us", text)
    return int(m.group(1)) / 1e3 if m else None


def du(path):
    return int(sh(["du", "-sb", path]).stdout.split()[0])


def read_lines(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_file(path, pred, timeout, poll=0.0005):
    """perf_counter time when pred(lines of the file) first holds, or None."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if pred(read_lines(path)):
            return time.perf_counter()
        time.sleep(poll)
    return None


def start_chroot_target(lines, tag):
    out, err = "/bench/out-%s.txt" % tag, "/bench/err-%s.txt" % tag
    for f in (out, err):
        if os.path.exists(CHROOT + f):
            os.unlink(CHROOT + f)
    inner = "cd /bench && exec %s /bench/target.py %d %d %d %d >%s 2>%s </dev/null" % (
        PY, lines, DEPTH, WORK_ITERS, THREADS, out, err)
    p = subprocess.Popen(["chroot", CHROOT, "/bin/sh", "-c", inner], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    STARTED.add(p.pid)
    return p, CHROOT + out, CHROOT + err


def nprogress(ls):
    return sum(1 for s in ls if is_progress(s))


def criu_checkpoint(i, lines, plain):
    r = {"run": i}
    img = "/bench/img-ck-%d" % i
    logf = "/bench/log/dump-ck-%d.log" % i
    shutil.rmtree(CHROOT + img, ignore_errors=True)
    os.makedirs(CHROOT + img)
    p, out, err = start_chroot_target(lines, "ck%d" % i)
    try:
        if wait_file(out, lambda ls: nprogress(ls) >= WARM_LINES, 30) is None:
            r["error"] = "target did not start: " + "\n".join(read_lines(err))[-500:]
            return r
        ms, d = criu("dump", "-t", str(p.pid), "--shell-job", "--leave-running", "-D", img,
                     "--display-stats", "-o", logf)
        if d.returncode != 0:
            r["error"] = criu_error("criu dump --leave-running", d, logf)
            return r
        r["total_ms"] = ms
        r["pause_ms"] = stat_us(d.stdout + d.stderr, "Frozen time")
        r["freezing_ms"] = stat_us(d.stdout + d.stderr, "Freezing time")
        r["size_bytes"] = du(CHROOT + img)
        rc = finish(p, 60)
        got = read_lines(out)
        r["original_ok"] = rc == 0 and got == plain
        if not r["original_ok"]:
            r["error"] = "original after criu dump --leave-running: exit %s, %d lines (expected %d)" % (
                rc, len(got), len(plain))
        return r
    finally:
        stop(p)
        shutil.rmtree(CHROOT + img, ignore_errors=True)


def criu_migrate(i, lines, plain):
    r = {"run": i}
    img = "/bench/img-mv-%d" % i
    dlog, rlog = "/bench/log/dump-mv-%d.log" % i, "/bench/log/restore-mv-%d.log" % i
    shutil.rmtree(CHROOT + img, ignore_errors=True)
    os.makedirs(CHROOT + img)
    p, out, err = start_chroot_target(lines, "mv%d" % i)
    pid = p.pid
    restored = False
    follow = FileLines(out)
    try:
        if follow.wait(progress_count(WARM_LINES), 30) is None:
            r["error"] = "target did not start: " + "\n".join(read_lines(err))[-500:]
            return r
        t0 = time.perf_counter()
        ms, d = criu("dump", "-t", str(pid), "--shell-job", "-D", img, "--display-stats", "-o", dlog)
        if d.returncode != 0:
            r["error"] = criu_error("criu dump", d, dlog)
            return r
        r["dump_ms"] = ms
        t_dumped = time.perf_counter()
        r["frozen_ms"] = stat_us(d.stdout + d.stderr, "Frozen time")
        r["size_bytes"] = du(CHROOT + img)
        r["dump_exit_signal"] = -p.wait(10)  # killed by the dump; reaped so that its pid is free
        ms, rs = criu("restore", "--shell-job", "-d", "-D", img, "--display-stats", "-o", rlog)
        t_restored = time.perf_counter()
        if rs.returncode != 0:
            r["error"] = criu_error("criu restore", rs, rlog)
            return r
        restored = True
        r["restore_ms"] = ms
        r["start_to_restored_ms"] = (t_restored - t0) * 1e3
        # stopped = frozen during the dump, then gone until `restore -d` returned
        if r["frozen_ms"] is not None:
            r["pause_ms"] = r["frozen_ms"] + (t_restored - t_dumped) * 1e3
        # lines seen after the dump ended come from the restored process
        first = follow.wait(lambda ls: next((t for t, s in ls if t > t_dumped and is_progress(s)), None), 30)
        if first is not None:
            r["total_ms"] = (first - t0) * 1e3
            with follow.cond:
                r["output_gap_ms"] = gap_after(list(follow.lines), t_dumped)[1]
        # the restored process (same pid, no longer our child) runs to its end
        deadline = time.monotonic() + 60
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if alive(pid):
            kill_started(pid)
        got = follow.stop()
        r["progress_lines"] = nprogress(got)
        r["ok"] = got == plain
        if not r["ok"]:
            r["error"] = "output after criu restore differs from a plain run: %d lines (expected %d), last %r" % (
                len(got), len(plain), got[-1:])
        return r
    finally:
        follow.stop()
        if p.poll() is None:
            stop(p)
        elif restored and alive(pid):  # the restored process (same pid) still runs: ours too
            kill_started(pid)
        STARTED.discard(pid)
        shutil.rmtree(CHROOT + img, ignore_errors=True)


# ---------------------------------------------------------------- report


def fmt_ms(s):
    return "—" if not s else "%.1f ms (%.1f–%.1f)" % (s["median"], s["min"], s["max"])


def fmt_size(s):
    if not s:
        return "—"
    b = s["median"]
    return "%d B (%.1f KiB)" % (b, b / 1024) if b < 1 << 20 else "%d B (%.2f MiB)" % (b, b / (1 << 20))


def ratio(ours, theirs):
    if not ours or not theirs or not ours["median"]:
        return "—"
    return "%.1f×" % (theirs["median"] / ours["median"])


def guard(fn, i, *a):
    """One run; an unexpected exception becomes that run's error."""
    try:
        return fn(i, *a)
    except Exception as e:
        return {"run": i, "error": "%s: %s" % (type(e).__name__, e)}


def summarize(runs, keys):
    good = [r for r in runs if "error" not in r]
    return {k: med([r.get(k) for r in good]) for k in keys}, len(good), len(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="pyteleport runs per measurement")
    ap.add_argument("--criu-runs", type=int, default=10, help="CRIU runs per measurement")
    ap.add_argument("--lines", type=int, default=200, help="progress lines the target prints")
    ap.add_argument("--no-criu", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="threads of the target in all (the others a few frames deep, waiting)")
    args = ap.parse_args()
    global THREADS
    THREADS = max(1, args.threads)
    os.makedirs(WORK, exist_ok=True)
    ensure_ours()
    plain, line_ms = plain_output(args.lines)
    assert nprogress(plain) == args.lines and plain[0] == "ready" and plain[-1].startswith("done"), plain[:3]
    pyver = subprocess.run([PY, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True).stdout.strip()
    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": PY, "python_version": pyver,
           "venv_python": VENV_PY, "kernel": platform.release(), "target": {"script": TARGET, "depth": DEPTH, "threads": THREADS,
           "lines": args.lines, "warm_lines": WARM_LINES, "work_iters": WORK_ITERS, "ms_per_line": line_ms}}

    res["binary_before"] = binary_id()
    log("pyteleport checkpoint x%d" % args.runs)
    ck = [guard(ours_checkpoint, i, args.lines, plain) for i in range(args.runs)]
    log("pyteleport migration x%d" % args.runs)
    mv = [guard(ours_migrate, i, args.lines, plain) for i in range(args.runs)]
    res["ours"] = {"checkpoint": ck, "migration": mv}
    res["binary_after"] = binary_id()
    if res["binary_after"] != res["binary_before"]:
        log("warning: %s changed during the pyteleport runs" % BIN)

    criu_err = None
    cck, cmv = [], []
    if args.no_criu:
        criu_err = "skipped (--no-criu)"
    else:
        try:
            ensure_chroot()
            mount_chroot()
            ms, v = criu("--version")
            if v.returncode != 0:
                raise CriuUnavailable("criu --version failed: " + (v.stderr + v.stdout).strip())
            res["criu_version"] = "CRIU " + v.stdout.strip().splitlines()[0].replace("Version:", "").strip()
            log("%s: dump --leave-running x%d" % (res["criu_version"], args.criu_runs))
            cck = [guard(criu_checkpoint, i, args.lines, plain) for i in range(args.criu_runs)]
            log("CRIU dump + restore x%d" % args.criu_runs)
            cmv = [guard(criu_migrate, i, args.lines, plain) for i in range(args.criu_runs)]
            if not any("error" not in r for r in cck + cmv):
                errs = [r["error"] for r in cck + cmv if "error" in r]
                criu_err = "every CRIU run failed; first error: " + errs[0]
        except CriuUnavailable as e:
            criu_err = str(e)
        except Exception as e:  # never let CRIU trouble fail the benchmark
            criu_err = "%s: %s" % (type(e).__name__, e)
        finally:
            unmount_all()
    res["criu"] = {"checkpoint": cck, "migration": cmv, "error": criu_err}

    s_ck, n_ck, t_ck = summarize(ck, ["pause_ms", "total_ms", "size_bytes", "restore_first_line_ms"])
    s_mv, n_mv, t_mv = summarize(mv, ["output_gap_ms", "pause_ms", "attach_to_new_process_ms", "total_ms"])
    c_ck, cn_ck, ct_ck = summarize(cck, ["pause_ms", "total_ms", "size_bytes"])
    c_mv, cn_mv, ct_mv = summarize(cmv, ["output_gap_ms", "pause_ms", "start_to_restored_ms", "dump_ms", "restore_ms", "total_ms", "size_bytes", "frozen_ms"])
    res["summary"] = {"ours_checkpoint": s_ck, "ours_migration": s_mv, "criu_checkpoint": c_ck,
                      "criu_migration": c_mv}

    rows = [
        ("checkpoint: target pause", fmt_ms(s_ck["pause_ms"]), fmt_ms(c_ck["pause_ms"]),
         ratio(s_ck["pause_ms"], c_ck["pause_ms"])),
        ("checkpoint: total (command wall time)", fmt_ms(s_ck["total_ms"]), fmt_ms(c_ck["total_ms"]),
         ratio(s_ck["total_ms"], c_ck["total_ms"])),
        ("checkpoint: snapshot / image size", fmt_size(s_ck["size_bytes"]), fmt_size(c_ck["size_bytes"]),
         ratio(s_ck["size_bytes"], c_ck["size_bytes"])),
        ("migration: pause until the new process started", fmt_ms(s_mv["pause_ms"]), fmt_ms(c_mv["pause_ms"]),
         ratio(s_mv["pause_ms"], c_mv["pause_ms"])),
        ("migration: command start until the new process runs", fmt_ms(s_mv["attach_to_new_process_ms"]),
         fmt_ms(c_mv["start_to_restored_ms"]), ratio(s_mv["attach_to_new_process_ms"], c_mv["start_to_restored_ms"])),
        ("migration: total until the new process printed", fmt_ms(s_mv["total_ms"]), fmt_ms(c_mv["total_ms"]),
         ratio(s_mv["total_ms"], c_mv["total_ms"])),
        ("migration: output gap (last line of the old process → first of the new)", fmt_ms(s_mv["output_gap_ms"]),
         fmt_ms(c_mv["output_gap_ms"]), ratio(s_mv["output_gap_ms"], c_mv["output_gap_ms"])),
        ("migration: dump / restore (CRIU)", "—", "%s / %s" % (fmt_ms(c_mv["dump_ms"]), fmt_ms(c_mv["restore_ms"])), ""),
        ("migration: image size (CRIU, killing dump)", "—", fmt_size(c_mv["size_bytes"]), ""),
        ("restore a checkpoint until first line", fmt_ms(s_ck["restore_first_line_ms"]), "— (see notes)", ""),
        ("correct runs (checkpoint)", "%d/%d" % (n_ck, t_ck), "%d/%d" % (cn_ck, ct_ck), ""),
        ("correct runs (migration)", "%d/%d" % (n_mv, t_mv), "%d/%d" % (cn_mv, ct_mv), ""),
    ]
    md = ["# pyteleport attach vs CRIU",
          "",
          "Target: pure-Python busy loop under %d nested calls, %d thread(s), CPython %s (`%s`), kernel %s; %s."
          % (DEPTH, THREADS, pyver, PY, platform.release(), res.get("criu_version", "CRIU not measured")),
          "Median (min–max) of the correct runs (pyteleport: %d runs each; CRIU: %d runs each). "
          "Ratio = CRIU / pyteleport (medians). pyteleport binary %s, tree %s."
          % (args.runs, args.criu_runs, res["binary_before"]["sha256"], res["binary_before"]["git"]),
          "",
          "| measurement | pyteleport | CRIU | ratio |",
          "|---|---|---|---|"]
    md += ["| %s | %s | %s | %s |" % row for row in rows]
    md += ["",
           "Notes: pyteleport's pauses are the ones it reports on stderr. CRIU's checkpoint pause is its "
           "`Frozen time` (--display-stats); its migration pause is that frozen time plus the time from the "
           "end of the (killing) dump until `criu restore -d` returned (the restored process runs). "
           "\"Command start until the new process runs\": pyteleport until its \"moved to process\" message, "
           "CRIU from `criu dump` start until `criu restore -d` returned. Totals run until the first progress "
           "line printed by the new process (lines are ~%.0f ms of work apart, so they include up to that much "
           "computation). " % line_ms +
           "A `--leave-running` CRIU image cannot be restored once the target wrote more output "
           "(criu: \"File ... has bad size\"), so CRIU's restore is measured on the killing dump only."]
    if criu_err:
        md += ["", "**CRIU could not be measured:** " + criu_err.replace("\n", " / ")]
    errs = [(name, r["error"]) for name, runs in (("ours checkpoint", ck), ("ours migration", mv),
                                                   ("criu checkpoint", cck), ("criu migration", cmv))
            for r in runs if "error" in r]
    if errs:
        md += ["", "Failed runs:"] + ["* %s: %s" % (n, e.replace("\n", " / ")[:600]) for n, e in errs]
    text = "\n".join(md) + "\n"
    print(text)
    os.makedirs(OUT_DIR, exist_ok=True)
    suffix = "" if THREADS == 1 else "-threads%d" % THREADS
    with open(os.path.join(OUT_DIR, "attach%s.json" % suffix), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(OUT_DIR, "attach%s.md" % suffix), "w") as f:
        f.write(text)
    log("wrote target/bench/attach%s.json and target/bench/attach%s.md" % (suffix, suffix))


if __name__ == "__main__":
    try:
        main()
    finally:
        for pid in list(STARTED):  # only those not yet known to be gone
            if alive(pid):
                kill_started(pid)
