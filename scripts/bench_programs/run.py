"""The benchmark driver (started by scripts/bench with the tools venv's Python).

Every measurement is the wall time of a whole process (time.perf_counter around
subprocess.run), warmed up once, then repeated --runs times; medians with min/max are
reported. Ours and the pyteleport 0.3.4 reference run the same programs
(scripts/bench_programs/prog.py) in the same invocation. A run counts only when it exits
with status 0 and prints the expected RESULT line; failures are recorded with their error
and never abort the bench. Results: a markdown table on stdout and target/bench/results.json.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROG = os.path.join(ROOT, "scripts", "bench_programs", "prog.py")
OUT_DIR = os.path.join(ROOT, "target", "bench")
BIN = os.path.join(ROOT, "target", "release", "pyteleport")
PYSPY = os.path.join(ROOT, ".venvs", "tools", "bin", "py-spy")
VERSIONS = ["3.11", "3.12", "3.13"]


def ours(v):
    return {"impl": "ours", "python": v, "exe": os.path.join(ROOT, ".venvs", f"py{v}", "bin", "python")}


REF = {"impl": "ref-0.3.4", "python": "3.11", "exe": os.path.join(ROOT, ".venvs", "ref-3.11", "bin", "python")}


def clean_env():
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTELEPORT_BIN"):
        env.pop(k, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(cmd, timeout):
    """(seconds, returncode, stdout, stderr); a timed-out run is killed (its own process
    group, which holds only what it started) and gets returncode None."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=clean_env(), cwd=OUT_DIR, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        rc = None
    return time.perf_counter() - t0, rc, out, err


def error_of(rc, out, err, expect, timeout):
    if rc is None:
        return f"timed out after {timeout} s"
    if rc == 0 and expect in out:
        return None
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else ""
    if rc == 0:
        got = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
        return f"wrong output: expected {expect!r}, got {got[-1] if got else out.strip()[-200:]!r}"
    return f"exit status {rc}: {last[:400]}" if last else f"exit status {rc}, no error output"


def stats(times):
    if not times:
        return None
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times)}


def measure(cmd, expect, runs, timeout):
    """Warm up once, then `runs` timed runs. If the warm-up fails, one confirming run is
    made and the case is recorded as failed (no point repeating a deterministic failure)."""
    dt, rc, out, err = run(cmd, timeout)
    first_error = error_of(rc, out, err, expect, timeout)
    n = runs if first_error is None else 1
    times, errors = [], []
    for _ in range(n):
        dt, rc, out, err = run(cmd, timeout)
        e = error_of(rc, out, err, expect, timeout)
        if e is None:
            times.append(dt)
        else:
            errors.append(e)
    res = {"time": stats(times), "failures": len(errors), "runs": n}
    if errors or first_error:
        res["error"] = errors[0] if errors else first_error
    return res


def snapshot_size(impl, case, expect, timeout):
    path = os.path.join(OUT_DIR, f"snap-{impl['impl']}-{impl['python']}-{case}.bin")
    if os.path.exists(path):
        os.unlink(path)
    dt, rc, out, err = run([impl["exe"], PROG, case, "file", path], timeout)
    e = error_of(rc, out, err, expect, timeout)
    size = os.path.getsize(path) if e is None and os.path.exists(path) else None
    if os.path.exists(path):
        os.unlink(path)
    # wall_seconds: the whole program with a save-to-file instead of the teleport (1 run)
    return {"bytes": size, "error": e} if e else {"bytes": size, "wall_seconds": dt}


def bench_case(case, result, impls, args, log):
    rows = []
    for impl in impls:
        t0 = time.perf_counter()
        exe = impl["exe"]
        plain = measure([exe, PROG, case, "plain"], f"RESULT {result} moved=False", args.runs, args.timeout)
        tp = measure([exe, PROG, case, "tp"], f"RESULT {result} moved=True", args.runs, args.timeout)
        snap = snapshot_size(impl, case, f"RESULT {result} moved=False", args.timeout)
        overhead = None
        if plain["time"] and tp["time"]:
            overhead = tp["time"]["median"] - plain["time"]["median"]
        row = {"case": case, "impl": impl["impl"], "python": impl["python"], "plain": plain,
               "round_trip": tp, "overhead_median": overhead, "snapshot": snap}
        rows.append(row)
        log(f"  {case:>14} {impl['impl']:>9} {impl['python']}: plain {fmt_t(plain)}, round trip {fmt_t(tp)}, "
            f"snapshot {fmt_size(snap)}  [{time.perf_counter() - t0:.1f} s]")
    return rows


# --- the reader: our dump --json vs py-spy dump --locals on a parked 100-frame target ---

TIMING_RE = re.compile(r"paused ([0-9.]+) ms, copied ([0-9]+) bytes")


def start_target(exe):
    p = subprocess.Popen([exe, PROG, "target", "plain"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=clean_env(), cwd=OUT_DIR)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        _, err = p.communicate()
        raise RuntimeError(f"target did not start: {line!r} {err.strip()[-300:]}")
    return p


def check_dump_json(out):
    d = json.loads(out)
    main = [t for t in d["threads"] if t.get("is_main")] or d["threads"]
    frames = main[0]["frames"]
    chunks = [f for f in frames if f["name"] == "target_frame" and "chunk" in f["locals"]]
    if len(chunks) != 100:
        return f"expected 100 target_frame frames with a `chunk` local, got {len(chunks)} ({len(frames)} frames)"
    r = chunks[0]["locals"]["chunk"]["repr"]
    if r.count(": ") != 100:
        return f"chunk repr has {r.count(': ')} items, expected 100: {r[:200]!r}"
    return None


def bench_reader(impl, args, log):
    row = {"impl": impl["impl"], "python": impl["python"]}
    try:
        target = start_target(impl["exe"])
    except Exception as e:  # noqa: BLE001
        row["error"] = str(e)
        log(f"  reader {impl['python']}: {e}")
        return row
    pid = target.pid
    try:
        dump_times, pauses, copied, errors = [], [], [], []
        for i in range(args.runs + 1):
            dt, rc, out, err = run([BIN, "dump", "--pid", str(pid), "--json", "--timings"], args.timeout)
            e = None if rc == 0 else error_of(rc, out, err, "", args.timeout)
            if e is None:
                try:
                    e = check_dump_json(out)
                except Exception as ex:  # noqa: BLE001
                    e = f"bad JSON: {ex}"
            m = TIMING_RE.search(err)
            if e is None and not m:
                e = f"no timings on stderr: {err.strip()[-200:]!r}"
            if i == 0:
                if e:
                    errors.append(e)
                    break
                continue  # warm-up
            if e:
                errors.append(e)
            else:
                dump_times.append(dt)
                pauses.append(float(m.group(1)) / 1000.0)
                copied.append(int(m.group(2)))
        row["dump_json"] = {"time": stats(dump_times), "failures": len(errors)}
        if errors:
            row["dump_json"]["error"] = errors[0]
        row["pause"] = stats(pauses)
        row["copied_bytes"] = statistics.median(copied) if copied else None

        spy_times, spy_errors = [], []
        for i in range(args.runs + 1):
            dt, rc, out, err = run([PYSPY, "dump", "--locals", "--pid", str(pid)], args.timeout)
            e = None
            if rc != 0:
                e = error_of(rc, out, err, "", args.timeout)
            elif out.count("target_frame") < 100:
                e = f"py-spy showed {out.count('target_frame')} target_frame frames"
            if i == 0:
                if e:
                    spy_errors.append(e)
                    break
                continue
            if e:
                spy_errors.append(e)
            else:
                spy_times.append(dt)
        row["py_spy"] = {"time": stats(spy_times), "failures": len(spy_errors)}
        if spy_errors:
            row["py_spy"]["error"] = spy_errors[0]
    finally:
        target.kill()  # only the target this function started
        target.communicate()
    log(f"  reader {impl['python']}: dump --json {fmt_t(row['dump_json'])}, pause {fmt_stats(row['pause'])}, "
        f"py-spy {fmt_t(row['py_spy'])}")
    return row


# --- formatting ---

def fmt_stats(s, unit="ms"):
    if not s:
        return "—"
    k = 1000.0 if unit == "ms" else 1.0
    if s["median"] * k >= 100:
        return f"{s['median'] * k:.0f} ({s['min'] * k:.0f}–{s['max'] * k:.0f})"
    return f"{s['median'] * k:.1f} ({s['min'] * k:.1f}–{s['max'] * k:.1f})"


def fmt_t(m):
    if m.get("time"):
        txt = fmt_stats(m["time"])
        if m.get("failures"):
            txt += f" ⚠ {m['failures']} failed"
        return txt
    return "FAILED"


def fmt_size(s):
    if s.get("bytes") is None:
        return "FAILED"
    b = s["bytes"]
    for unit, k in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b} B"


def fmt_snap(s):
    txt = fmt_size(s)
    return txt if s.get("wall_seconds") is None else f"{txt} ({s['wall_seconds'] * 1000:.0f} ms)"


def add_note(notes, where, what, error):
    """Group identical errors (addresses masked) over Python versions and steps."""
    key = (where, re.sub(r"0x[0-9a-f]+", "0x…", re.sub(r"prog\.py:\d+", "prog.py", error)))
    notes.setdefault(key, []).append(what)


def fmt_overhead(row):
    o = row["overhead_median"]
    return "—" if o is None else f"{o * 1000:.1f}"


def table_cases(rows, notes):
    lines = ["| case | impl | Python | plain run, ms | round trip, ms | overhead, ms | snapshot (to-file run, ms) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['impl']} | {r['python']} | {fmt_t(r['plain'])} | {fmt_t(r['round_trip'])} "
                     f"| {fmt_overhead(r)} | {fmt_snap(r['snapshot'])} |")
        for what, m in (("plain run", r["plain"]), ("round trip", r["round_trip"]), ("snapshot", r["snapshot"])):
            if m.get("error"):
                add_note(notes, f"{r['case']} / {r['impl']}", f"{r['python']} {what}", m["error"])
    return lines


def table_reader(rows, notes):
    lines = ["| Python | `pyteleport dump --json`, ms | target paused, ms | copied | `py-spy dump --locals`, ms |",
             "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['python']} | FAILED | | | |")
            add_note(notes, "reader", r["python"], r["error"])
            continue
        copied = r["copied_bytes"]
        lines.append(f"| {r['python']} | {fmt_t(r['dump_json'])} | {fmt_stats(r['pause'])} | "
                     f"{fmt_size({'bytes': int(copied)}) if copied else '—'} | {fmt_t(r['py_spy'])} |")
        for what in ("dump_json", "py_spy"):
            if r[what].get("error"):
                add_note(notes, f"reader / {what}", r["python"], r[what]["error"])
    return lines


def build_state(versions):
    """What is being measured: the commit, whether the tree was dirty, and the mtimes of
    the installed pieces (to notice a rebuild while the bench runs)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    files = [BIN] + [os.path.join(ROOT, ".venvs", f"py{v}", "bin", "python") for v in versions]
    stamps = {}
    for v in versions:
        site = subprocess.run([ours(v)["exe"], "-c", "import pyteleport, os; print(os.path.dirname(pyteleport.__file__))"],
                              capture_output=True, text=True).stdout.strip()
        for name in sorted(os.listdir(site)) if os.path.isdir(site) else []:
            if name.endswith((".py", ".so")):
                files.append(os.path.join(site, name))
        files.append(os.path.join(site, "_bin", "pyteleport"))
    for f in files:
        try:
            stamps[f] = os.stat(f).st_mtime
        except OSError:
            stamps[f] = None
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty_files": len(git("status", "--porcelain").splitlines()),
            "stamps": stamps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement (after one warm-up)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before a run is killed")
    ap.add_argument("--versions", default=",".join(VERSIONS), help="our CPython versions (the reference is 3.11 only)")
    ap.add_argument("--only", default="teleport,depth,memory,reader", help="sections to run")
    args = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    versions = [v for v in args.versions.split(",") if v]
    sections = set(args.only.split(","))
    impls = [ours(v) for v in versions] + [REF]
    started = time.perf_counter()
    build = build_state(versions)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "runs": args.runs, "loadavg_at_start": os.getloadavg(), "statistic": "median (min–max) of wall time of a whole process, ms",
        "reference": "pyteleport 0.3.4 from PyPI, CPython 3.11",
        "pythons": {f"{i['impl']} {i['python']}": subprocess.run([i["exe"], "-c", "import sys; print(sys.version.split()[0])"],
                                                                  capture_output=True, text=True).stdout.strip()
                    for i in impls},
    }}
    if "teleport" in sections:
        log("seed round trip (3 nested frames)")
        results["teleport"] = bench_case("seed", "hello world!", impls, args, log)
    if "depth" in sections:
        log("stack depth")
        results["depth"] = []
        for n in (1, 10, 100, 1000):
            results["depth"] += bench_case(f"depth-{n}", str(n), impls, args, log)
    if "memory" in sections:
        log("large locals")
        results["memory"] = []
        mib = 1024 * 1024
        pattern = lambda mb: sum((bytes(range(256)) * (mb * mib // 256))[::4099])  # noqa: E731
        for case, expect in (("bytes-100", f"{100 * mib}:{pattern(100)}"),
                             ("bytearray-100", f"{100 * mib}:{pattern(100)}"),
                             ("bytes-40", f"{40 * mib}:{pattern(40)}"),
                             ("floats", f"1000000:{sum(i * 0.5 for i in range(1_000_000))}")):
            results["memory"] += bench_case(case, expect, impls, args, log)
    if "reader" in sections:
        log("reader: 100 frames, 10,000 objects in locals")
        results["reader"] = [bench_reader(ours(v), args, log) for v in versions]
    results["meta"]["total_seconds"] = time.perf_counter() - started
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    after = build_state(versions)
    changed = sorted(f for f in after["stamps"] if after["stamps"][f] != build["stamps"].get(f))
    results["meta"]["build"] = {"commit": build["commit"], "dirty_files": build["dirty_files"],
                                "changed_during_bench": changed}

    notes = {}
    md = [f"# pyteleport benchmarks ({results['meta']['date']}, {results['meta']['cpus']} CPUs, "
          f"kernel {results['meta']['kernel']})", "",
          f"Measured: commit {build['commit']}" + (f" with {build['dirty_files']} uncommitted changes" if build["dirty_files"] else "")
          + ", release binary and the per-version venvs as installed. Load average at start "
          + "{:.2f} (other work on the machine makes the numbers noisier).".format(results["meta"]["loadavg_at_start"][0]), "",
          f"Wall time of whole processes: median (min–max) of {args.runs} runs after one warm-up, in ms. "
          "Round trip = `python prog.py CASE tp` (teleports once with `tp_dummy()`, the restored process "
          "prints the result); plain = the same program without the teleport call; overhead = median "
          "round trip − median plain. Snapshot = ours `teleport(to_file=…, exit=False)` file size, "
          "reference `dump(file)` (its .pyc payload) size, with the wall time of that one run. FAILED cases were run once after a failed "
          "warm-up; errors below.", ""]
    for key, title in (("teleport", "Teleport: seed (3 nested frames)"), ("depth", "Stack depth"),
                       ("memory", "Large locals (100 MiB bytes / bytearray, 40 MiB bytes, list of 1e6 floats)")):
        if key in results:
            md += [f"## {title}", ""] + table_cases(results[key], notes) + [""]
    if "reader" in results:
        md += ["## Reader: 100-frame stack, 10,000 objects in locals, target parked in sleep", ""]
        md += table_reader(results["reader"], notes) + [""]
    if notes:
        md += ["## Failures", ""] + [f"* {where} ({', '.join(whats)}): `{err}`" for (where, err), whats in notes.items()] + [""]
    if changed:
        parts = sorted({os.path.relpath(f, ROOT).split("/lib/")[0] for f in changed})
        md += [f"**Warning: the build changed while the bench ran ({len(changed)} files under "
               f"{', '.join(parts)}): results may mix two builds; run it again.**", ""]
    md.append(f"Total bench time: {results['meta']['total_seconds']:.0f} s.")
    text = "\n".join(md)
    results["markdown"] = text
    with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(OUT_DIR, "results.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
