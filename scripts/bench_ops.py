#!/root/.pyenv/versions/3.11.7/bin/python3.11
"""Benchmark: a long job under `pyteleport run --every`, against a plain run and CRIU.

Run as root:  scripts/bench_ops.py [--runs 3] [--chunks 120] [--every 10s] [--no-criu]

The job (scripts/bench_attach/ops_job.py) holds 100 MB (a 90 MB bytearray and a 10 MB
list of floats) and runs a deterministic pure-Python loop for ~35 s, one line per chunk.
  * plain: `python ops_job.py CHUNKS`, wall time (median of --runs).
  * pyteleport: `pyteleport run --checkpoint-dir D --every 10s --keep 1 --json -- python
    ops_job.py CHUNKS`: wall time, slowdown against plain, the job's pause per checkpoint
    (attach's "target paused", from the JSON events), checkpoint size and total time per
    checkpoint (copy, decode, encode, fsync, done while the job runs on). Output checked
    against the plain run's.
  * CRIU `dump --leave-running` of the same job every 10 s (CRIU 4.x from a Debian sid
    chroot, as scripts/bench_attach.py sets it up): "Frozen time" per dump, image size,
    wall time of the job.
Writes target/bench/ops.json and prints a markdown table.
"""
import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = os.path.join(ROOT, "scripts", "bench_attach", "ops_job.py")
PY = "/root/.pyenv/versions/3.11.7/bin/python3.11"  # the one scripts/bench_attach.py mounts in its CRIU chroot
VENV = os.path.join(ROOT, ".venvs", "py3.11", "bin")


def median(xs):
    return statistics.median(xs) if xs else None


def plain(chunks):
    t0 = time.perf_counter()
    p = subprocess.run([PY, JOB, str(chunks)], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, p.stdout


def under_run(chunks, every, expected):
    d = tempfile.mkdtemp(prefix="bench-ops-", dir=os.path.join(ROOT, "target"))
    log = os.path.join(d, "events.jsonl")
    try:
        t0 = time.perf_counter()
        p = subprocess.run([os.path.join(VENV, "pyteleport"), "run", "--checkpoint-dir", os.path.join(d, "ckpt"), "--every", every,
                            "--keep", "1", "--json", "--log", log, "--", PY, JOB, str(chunks)], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        events = [json.loads(l) for l in open(log)]
        ck = [e for e in events if e["event"] == "checkpoint"]
        ok = p.returncode == 0 and p.stdout == expected
        return {"wall": wall, "ok": ok, "checkpoints": len(ck), "pauses_ms": [e["paused_seconds"] * 1e3 for e in ck if e["paused_seconds"]],
                "sizes": [e["size"] for e in ck], "totals_ms": [e["seconds"] * 1e3 for e in ck],
                "failed": [e for e in events if e["event"] == "checkpoint_failed"]}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def criu_run(chunks, every_s, expected):
    spec = importlib.util.spec_from_file_location("bench_attach", os.path.join(ROOT, "scripts", "bench_attach.py"))
    ba = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ba)
    ba.ensure_chroot()
    ba.mount_chroot()
    try:
        shutil.copy(JOB, os.path.join(ba.CHROOT, "bench", "ops_job.py"))
        inner = "cd /bench && exec %s /bench/ops_job.py %d >/bench/ops-out.txt 2>/bench/ops-err.txt </dev/null" % (PY, chunks)
        t0 = time.perf_counter()
        p = subprocess.Popen(["chroot", ba.CHROOT, "/bin/sh", "-c", inner], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, close_fds=True)
        frozen, sizes, errors = [], [], []
        n = 0
        while p.poll() is None:
            time.sleep(0.05)
            if time.perf_counter() - t0 < every_s * (n + 1):
                continue
            n += 1
            img = "/bench/img-%d" % n
            os.makedirs(ba.CHROOT + img, exist_ok=True)
            ms, r = ba.criu("dump", "-t", str(p.pid), "--shell-job", "--leave-running", "-D", img, "--display-stats",
                            "-o", "/bench/log/ops-dump-%d.log" % n)
            if r.returncode == 0:
                frozen.append(ba.stat_us(r.stdout + r.stderr, "Frozen time"))
                sizes.append(ba.du(ba.CHROOT + img))
            elif p.poll() is None:
                errors.append(ba.criu_error("criu dump", r, "/bench/log/ops-dump-%d.log" % n))
            shutil.rmtree(ba.CHROOT + img, ignore_errors=True)
        wall = time.perf_counter() - t0
        out = open(os.path.join(ba.CHROOT, "bench", "ops-out.txt")).read()
        return {"wall": wall, "ok": out == expected, "frozen_ms": [f for f in frozen if f is not None], "sizes": sizes, "errors": errors[:2]}
    finally:
        ba.unmount_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=120)
    ap.add_argument("--every", default="10s")
    ap.add_argument("--no-criu", action="store_true")
    a = ap.parse_args()
    every_s = float(a.every.rstrip("s"))
    plains, expected = [], None
    runs = []
    for i in range(a.runs):  # interleaved, so that drift in the machine's load hits both
        w, out = plain(a.chunks)
        plains.append(w)
        expected = expected or out
        runs.append(under_run(a.chunks, a.every, expected))
        print(f"run {i}: plain {w:.2f} s, under pyteleport run {runs[-1]['wall']:.2f} s", file=sys.stderr)
    res = {"plain_s": median(plains), "run_s": median([r["wall"] for r in runs]), "all_ok": all(r["ok"] for r in runs),
           "checkpoints_per_run": [r["checkpoints"] for r in runs],
           "pause_ms": median([x for r in runs for x in r["pauses_ms"]]),
           "checkpoint_total_ms": median([x for r in runs for x in r["totals_ms"]]),
           "size_bytes": median([x for r in runs for x in r["sizes"]]),
           "failed": [f for r in runs for f in r["failed"]][:3]}
    res["slowdown_pct"] = 100 * (res["run_s"] / res["plain_s"] - 1)
    if not a.no_criu:
        try:
            c = criu_run(a.chunks, every_s, expected)
            res["criu"] = {"wall_s": c["wall"], "ok": c["ok"], "frozen_ms": median(c["frozen_ms"]), "dumps": len(c["frozen_ms"]),
                           "size_bytes": median(c["sizes"]), "slowdown_pct": 100 * (c["wall"] / res["plain_s"] - 1), "errors": c["errors"]}
        except Exception as e:  # reported, not hidden
            res["criu"] = {"error": f"{type(e).__name__}: {e}"}
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench", "ops.json"), "w") as f:
        json.dump(res, f, indent=2)
    c = res.get("criu", {})
    print(f"| job holding 100 MB, {a.chunks} chunks, checkpoint every {a.every} (medians of {a.runs}) | pyteleport run | CRIU dump --leave-running |")
    print("|---|---|---|")
    print(f"| wall time (plain run {res['plain_s']:.2f} s) | {res['run_s']:.2f} s | {c.get('wall_s', float('nan')):.2f} s |")
    print(f"| slowdown | {res['slowdown_pct']:.2f} % | {c.get('slowdown_pct', float('nan')):.2f} % |")
    print(f"| pause per checkpoint | {res['pause_ms'] or float('nan'):.1f} ms | {c.get('frozen_ms') or float('nan'):.1f} ms |")
    print(f"| checkpoint size | {(res['size_bytes'] or 0) / 1e6:.1f} MB | {(c.get('size_bytes') or 0) / 1e6:.1f} MB |")
    print(f"| checkpoints per run | {res['checkpoints_per_run']} | {c.get('dumps')} |")
    print(f"| whole checkpoint (job runs on meanwhile) | {res['checkpoint_total_ms'] or float('nan'):.0f} ms | |")
    print(f"| output equals a plain run | {res['all_ok']} | {c.get('ok')} |")
    if "error" in c or c.get("errors"):
        print("CRIU:", c.get("error") or c.get("errors"))


if __name__ == "__main__":
    main()
