"""`pyteleport dump` tested the way a user would: real CPython processes parked in
known states, compared with what Python itself reports and with py-spy."""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

from conftest import DUMP_ONLY_PYTHONS, PYTHONS, Target, python_id, proc_state, task_states

TARGETS = ["nested", "loops", "generators", "threads", "module_level", "values", "comprehension"]

STOPPED_STATES = {"T", "t"}


# ------------------------------------------------------------------------- helpers

def thread_by_id(dump):
    return {t["thread_id"]: t for t in dump["threads"]}


def compare_value(tool, rep, where, errors):
    rtype, rrepr, info = rep
    if tool.get("type") != rtype:
        errors.append(f"{where}: type {tool.get('type')!r} != Python's {rtype!r}")
    if info.get("py_repr"):
        # repr() ran a __repr__ written in Python; a memory reader can only describe it.
        if not tool.get("repr"):
            errors.append(f"{where}: empty repr")
    elif tool.get("repr") != rrepr:
        errors.append(f"{where}: repr {short(tool.get('repr'))!r} != Python's {short(rrepr)!r}")
    gen = info.get("gen")
    if gen is not None:
        if "frame" in gen:
            if "frame" not in tool:
                errors.append(f"{where}: {gen['state']} generator without 'frame'")
            else:
                compare_frame(tool["frame"], gen["frame"], f"{where}.gi_frame", errors)


def short(s, n=120):
    if isinstance(s, str) and len(s) > n:
        return s[:n] + f"...<{len(s)} chars>"
    return s


def compare_frame(tool, rep, where, errors):
    where = f"{where}[{rep['co_qualname']}]"
    for key, rkey in [("name", "co_name"), ("qualname", "co_qualname"), ("filename", "co_filename"),
                      ("first_line", "co_firstlineno"), ("line", "f_lineno"), ("offset", "f_lasti"),
                      ("generator", "generator")]:
        if tool.get(key) != rep[rkey]:
            errors.append(f"{where}: {key} {tool.get(key)!r} != Python's {rkey} {rep[rkey]!r}")
    tl, rl = tool.get("locals", {}), rep["locals"]
    for name in sorted(set(rl) - set(tl)):
        errors.append(f"{where}: local {name!r} missing (Python: {short(rl[name][1])!r})")
    for name in sorted(set(tl) - set(rl)):
        errors.append(f"{where}: extra local {name!r} = {short(tl[name].get('repr'))!r} not in f_locals")
    for name in sorted(set(tl) & set(rl)):
        compare_value(tl[name], rl[name], f"{where}.{name}", errors)
    if tool.get("stack_depth_from") not in ("stacktop", "static", "unknown"):
        errors.append(f"{where}: bad stack_depth_from {tool.get('stack_depth_from')!r}")
    for item in tool.get("stack", []):
        if item is not None and not ({"type", "repr"} <= set(item)):
            errors.append(f"{where}: malformed stack item {item!r}")


def check_stack_expectations(dump, report, errors):
    expect = report["extra"].get("stack", {})
    frames = [f for t in dump["threads"] for f in t["frames"]]
    for qualname, items in expect.items():
        matching = [f for f in frames if f["qualname"] == qualname]
        if len(matching) != 1:
            errors.append(f"stack: expected one frame {qualname!r}, found {len(matching)}")
            continue
        frame = matching[0]
        stack = [s for s in frame.get("stack", []) if s is not None]
        for want in items:
            of_type = [s for s in stack if s["type"] == want["type"]]
            if not of_type:
                errors.append(f"stack of {qualname}: no {want['type']} on the value stack "
                              f"(stack: {[s['type'] for s in stack]})")
                continue
            if "local" in want:
                local = frame["locals"].get(want["local"])
                if local is None or local["repr"] not in [s["repr"] for s in of_type]:
                    errors.append(f"stack of {qualname}: the iterator on the stack is not the object "
                                  f"in local {want['local']!r} ({local and local['repr']} vs "
                                  f"{[s['repr'] for s in of_type]})")


def assert_clean_failure(res, what):
    err = res.stderr
    assert res.returncode != 0, f"{what}: expected a non-zero exit, got 0 (stdout={res.stdout[:300]!r})"
    assert "panicked at" not in err and "RUST_BACKTRACE" not in err and "stack backtrace" not in err, \
        f"{what}: Rust panic text on stderr: {err!r}"
    assert "internal error" not in err and res.returncode != 70, \
        f"{what}: the tool hit an internal error (caught panic): {err!r}"
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, f"{what}: expected a one-line message on stderr, got {err!r}"
    return lines[0]


def wait_not_stopped(pid, timeout=2.0):
    """All threads of pid leave the stopped/traced state within timeout; returns states."""
    deadline = time.monotonic() + timeout
    while True:
        states = task_states(pid)
        if not (set(states.values()) & STOPPED_STATES) or time.monotonic() > deadline:
            return states
        time.sleep(0.01)


def pyspy_supports(pyspy_bin, version):
    out = subprocess.run([pyspy_bin, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    pyspy = tuple(int(x) for x in m.groups()) if m else (0, 0, 0)
    major_minor = tuple(int(x) for x in version.split(".")[:2])
    if major_minor <= (3, 12):
        return True
    if major_minor == (3, 13):
        return pyspy >= (0, 4, 0)
    # Debian's 3.14.10 and 3.15.2 (scripts/sid-pythons) were checked with py-spy 0.4.3.
    return major_minor in ((3, 14), (3, 15)) and pyspy >= (0, 4, 3)


def parse_pyspy(text):
    """py-spy dump --locals output -> {thread number: {"name", "frames": [{func, file, line, locals}]}}"""
    threads = {}
    cur = frame = None
    for line in text.splitlines():
        m = re.match(r'^Thread (0x[0-9A-Fa-f]+|\d+) \(([^)]*)\)(?:: "(.*)")?', line)
        if m:
            num = int(m.group(1), 16) if m.group(1).startswith("0x") else int(m.group(1))
            cur = threads[num] = {"name": m.group(3), "frames": []}
            frame = None
            continue
        m = re.match(r"^    (\S.*) \((.*):(\d+)\)$", line)
        if m and cur is not None:
            frame = {"func": m.group(1), "file": m.group(2), "line": int(m.group(3)), "locals": set()}
            cur["frames"].append(frame)
            continue
        m = re.match(r"^            ([^:\s]+): ", line)
        if m and frame is not None:
            frame["locals"].add(m.group(1))
    return threads


# ---------------------------------------------------- 1. JSON against the self-report

@pytest.mark.parametrize("target", TARGETS)
def test_json_matches_self_report(python, target, parked_targets, dump_json):
    t = parked_targets(python, target)
    report = t.report
    dump = dump_json(t.pid)
    errors = []
    assert dump["pid"] == t.pid
    assert str(dump["python_version"]).startswith(report["version"] + "."), dump["python_version"]

    tool_threads = thread_by_id(dump)
    rep_threads = {r["ident"]: r for r in report["threads"]}
    assert set(tool_threads) == set(rep_threads), \
        f"threads: tool {sorted(tool_threads)} != Python {sorted(rep_threads)}"
    assert sum(th["is_main"] for th in dump["threads"]) == 1, "exactly one main thread"

    for ident, rt in rep_threads.items():
        tt = tool_threads[ident]
        where = f"thread {rt['name']!r}"
        if tt["name"] != rt["name"]:
            errors.append(f"{where}: name {tt['name']!r} != threading name {rt['name']!r}")
        if tt["is_main"] != rt["is_main"]:
            errors.append(f"{where}: is_main {tt['is_main']} != {rt['is_main']}")
        # threading knows the native id only of threads it started or adopted.
        if rt["native_id"] is not None and tt["native_thread_id"] != rt["native_id"]:
            errors.append(f"{where}: native_thread_id {tt['native_thread_id']} != {rt['native_id']}")
        tool_frames = [(f["qualname"], f["line"]) for f in tt["frames"]]
        rep_frames = [(f["co_qualname"], f["f_lineno"]) for f in rt["frames"]]
        if tool_frames != rep_frames:
            errors.append(f"{where}: frames {tool_frames} != Python's {rep_frames}")
            continue
        for tf, rf in zip(tt["frames"], rt["frames"]):
            compare_frame(tf, rf, where, errors)

    check_stack_expectations(dump, report, errors)
    assert not errors, f"{len(errors)} mismatches:\n" + "\n".join(errors)


def test_generator_states(python, parked_targets, dump_json):
    """Every generator local carries a `state`, one value per Python-level state
    (inspect.getgeneratorstate), different states telling apart."""
    t = parked_targets(python, "generators")
    dump = dump_json(t.pid)
    rep_threads = {r["ident"]: r for r in t.report["threads"]}
    errors = []
    seen = {}
    for th in dump["threads"]:
        for tf, rf in zip(th["frames"], rep_threads[th["thread_id"]]["frames"]):
            for name, rv in rf["locals"].items():
                gen = rv[2].get("gen")
                tv = tf["locals"].get(name)
                if not gen or tv is None:
                    continue
                if "state" not in tv:
                    errors.append(f"{tf['qualname']}.{name}: {gen['state']} generator has no 'state'")
                    continue
                seen.setdefault(gen["state"], {})[name] = json.dumps(tv["state"])
    for state in ("GEN_CREATED", "GEN_SUSPENDED", "GEN_RUNNING", "GEN_CLOSED"):
        if state not in seen:
            errors.append(f"no generator in Python state {state} has a tool state")
    for state, by_name in seen.items():
        if len(set(by_name.values())) != 1:
            errors.append(f"generators in Python state {state} have different tool states {by_name}")
    firsts = {state: next(iter(by_name.values())) for state, by_name in seen.items()}
    if len(set(firsts.values())) != len(firsts):
        errors.append(f"different Python generator states share a tool state: {firsts}")
    assert not errors, "\n".join(errors)


# -------------------------------------------------------------- 2. the human form

@pytest.mark.parametrize("target", ["nested", "threads", "module_level", "values"])
def test_text_form(python, target, parked_targets, run_dump):
    t = parked_targets(python, target)
    res = run_dump(t.pid)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    errors = []
    assert text.count("Traceback (most recent call last):") == len(t.report["threads"]), text[:2000]
    for rt in t.report["threads"]:
        header = re.search(rf"^Thread {rt['ident']}\b.*$", text, re.M)
        if not header:
            errors.append(f"no header line for thread {rt['ident']}")
        elif f'"{rt["name"]}"' not in header.group(0):
            errors.append(f"thread header {header.group(0)!r} lacks the name {rt['name']!r}")
        # File lines outermost first, each followed by its locals.
        pos = text.index(header.group(0)) if header else 0
        for rf in reversed(rt["frames"]):
            file_line = f'  File "{rf["co_filename"]}", line {rf["f_lineno"]}, in {rf["co_qualname"]}\n'
            at = text.find(file_line, pos)
            if at < 0:
                errors.append(f"missing (or out of order) {file_line.strip()!r}")
                continue
            pos = at + len(file_line)
            end = text.find("  File ", pos)
            end = len(text) if end < 0 else end
            nxt = text.find("\nThread ", pos)
            if 0 <= nxt < end:
                end = nxt
            block = text[pos:end]
            for name, (tname, rrepr, info) in rf["locals"].items():
                if rf["co_qualname"] == "<module>" and name.startswith("__"):
                    continue
                if info.get("py_repr") or len(rrepr) > 200:
                    want = f"      {name} = "
                else:
                    want = f"      {name} = {rrepr}\n"
                if want not in block:
                    errors.append(f"{rf['co_qualname']}: no line {want.rstrip()!r}")
    assert not errors, f"{len(errors)} problems:\n" + "\n".join(errors)


# ------------------------------------------------------------- 3. against py-spy

@pytest.mark.parametrize("target", ["nested", "loops", "threads", "module_level", "generators"])
def test_agrees_with_pyspy(python, target, parked_targets, dump_json, pyspy_bin):
    t = parked_targets(python, target)
    dump = dump_json(t.pid)
    version = dump["python_version"]
    spy = subprocess.run([pyspy_bin, "dump", "--locals", "--pid", str(t.pid)],
                         capture_output=True, text=True, timeout=60)
    if not pyspy_supports(pyspy_bin, version):
        assert spy.returncode != 0 or "unsupported" in (spy.stdout + spy.stderr).lower(), \
            f"py-spy was expected to refuse Python {version}, but printed:\n{spy.stdout}"
        return
    assert spy.returncode == 0, f"py-spy failed on Python {version}: {spy.stderr}"
    assert wait_not_stopped(t.pid) and not (set(task_states(t.pid).values()) & STOPPED_STATES)
    spy_threads = parse_pyspy(spy.stdout)
    rep_threads = {r["ident"]: r for r in t.report["threads"]}
    errors = []
    assert len(spy_threads) == len(dump["threads"]), spy.stdout
    for tt in dump["threads"]:
        st = spy_threads.get(tt["native_thread_id"]) or spy_threads.get(tt["thread_id"])
        if st is None:
            errors.append(f"py-spy has no thread {tt['native_thread_id']}/{tt['thread_id']}")
            continue
        if st["name"] is not None and st["name"] != tt["name"]:
            errors.append(f"thread {tt['thread_id']}: name {tt['name']!r} != py-spy's {st['name']!r}")
        ours = [(f["qualname"], os.path.basename(f["filename"]), f["line"]) for f in tt["frames"]]
        theirs = [(f["func"], os.path.basename(f["file"]), f["line"]) for f in st["frames"]]
        if ours != theirs:
            errors.append(f"thread {tt['name']!r}: frames {ours} != py-spy's {theirs}")
            continue
        rt = rep_threads[tt["thread_id"]]
        for tf, sf, rf in zip(tt["frames"], st["frames"], rt["frames"]):
            if tf["qualname"] == "<module>":
                continue  # py-spy shows no locals for module frames
            # py-spy leaves out cell and free variables; compare the rest.
            cells = set(rf["cells"])
            if set(tf["locals"]) - cells != sf["locals"] - cells:
                errors.append(f"{tf['qualname']}: locals {sorted(tf['locals'])} != py-spy's {sorted(sf['locals'])}"
                              f" (cells/free: {sorted(cells)})")
    assert not errors, "\n".join(errors)


# ------------------------------------------------------------------ 4. bad input

def test_nonexistent_pid(run_dump):
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    res = run_dump(pid, timeout=20)
    msg = assert_clean_failure(res, f"pid {pid}")
    assert str(pid) in msg, msg
    res = run_dump(pid, json_out=True, timeout=20)
    assert_clean_failure(res, f"pid {pid} --json")
    assert res.stdout == ""


def test_not_python(run_dump, spawn):
    child = spawn(["sleep", "60"])
    time.sleep(0.1)
    for json_out in (False, True):
        res = run_dump(child.pid, json_out=json_out, timeout=20)
        msg = assert_clean_failure(res, "sleep 60")
        assert str(child.pid) in msg and "python" in msg.lower(), msg
    assert proc_state(child.pid) not in STOPPED_STATES | {None, "Z"}, \
        f"`sleep` left in state {proc_state(child.pid)} after a failed dump"


def test_unsupported_python_version(run_dump, spawn, unsupported_python):
    child = spawn([unsupported_python, "-c",
                   "import time; print('ready', flush=True); time.sleep(60)"])
    child.wait_line(lambda l: l == "ready", 20)
    res = run_dump(child.pid, timeout=20)
    msg = assert_clean_failure(res, "python3.10")
    # The version must be named as such, not merely appear inside a library path.
    words = " ".join(w for w in msg.split() if "/" not in w)
    assert re.search(r"\b3\.10\b", words), f"message does not name the version 3.10: {msg!r}"
    for supported in ("3.11", "3.12", "3.13"):
        assert supported in words, f"message does not name supported version {supported}: {msg!r}"
    assert proc_state(child.pid) not in STOPPED_STATES | {None, "Z"}


@pytest.mark.parametrize("python", DUMP_ONLY_PYTHONS, ids=[python_id(p) for p in DUMP_ONLY_PYTHONS])
def test_dump_only_version_refuses_attach(python, pyteleport_bin, spawn, tmp_path):
    """3.14 and 3.15 are read, not moved: attach says so in one line and leaves the target be."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        pytest.fail(f"required interpreter {python} is missing: run scripts/sid-pythons", pytrace=False)
    child = spawn([python, "-c", "import time; print('ready', flush=True); time.sleep(60)"])
    child.wait_line(lambda l: l == "ready", 20)
    version = python_id(python)[2:]
    res = subprocess.run([pyteleport_bin, "attach", str(child.pid), "--checkpoint", str(tmp_path / "snap")],
                         capture_output=True, text=True, timeout=30)
    msg = assert_clean_failure(res, f"attach to {version}")
    assert f"CPython {version}." in msg and "can read (dump) but not yet move" in msg, msg
    assert not (tmp_path / "snap").exists()
    assert proc_state(child.pid) not in STOPPED_STATES | {None, "Z"}
    res = subprocess.run([pyteleport_bin, "dump", "--pid", str(child.pid)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr


SHORT_LIVED = """
import random, sys, threading, time
junk = [str(i) * 3 for i in range(300000)]
threading.Thread(target=time.sleep, args=(1,), daemon=True).start()
print("ready", flush=True)
time.sleep(random.uniform(0.005, 0.06))
sys.exit(0)
"""


def test_process_exits_while_read(python, run_dump, spawn):
    outcomes = {"ok": 0, "error": 0}
    # Dumps that land after the exit (zombie) or during finalization are both expected;
    # a hang here was seen in ~6% of trials on 3.12, hence 40 trials.
    for trial in range(40):
        child = spawn([python, "-c", SHORT_LIVED])
        child.wait_line(lambda l: l == "ready", 20)
        try:
            res = run_dump(child.pid, json_out=True, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"trial {trial}: dump hung on an exiting process")
        if res.returncode == 0:
            json.loads(res.stdout)
            outcomes["ok"] += 1
        else:
            assert_clean_failure(res, f"trial {trial}")
            outcomes["error"] += 1
        child.kill()
    print(outcomes)


# ------------------------------------------------- 5/6. the target keeps running

def closed_form_ok(n, total, squares):
    return total == n * (n - 1) // 2 and squares == (n - 1) * n * (2 * n - 1) // 6


def last_tick(child):
    ticks = [l for l in child.all_lines if l.startswith("tick ")]
    return int(ticks[-1].split()[2]) if ticks else -1


def assert_progressing(child, what):
    states = wait_not_stopped(child.pid)
    assert states and not (set(states.values()) & STOPPED_STATES), \
        f"{what}: target threads left stopped: {states}"
    before = last_tick(child)
    child.wait_line(lambda l: l.startswith("tick ") and int(l.split()[2]) > before, 5)


def finish_and_verify(child):
    child.proc.stdin.write("stop\n")
    child.proc.stdin.flush()
    child.wait_line(lambda l: l == "done", 20)
    assert child.proc.wait(20) == 0, child.stderr_text
    results = [l.split() for l in child.all_lines if l.startswith("result ")]
    assert sorted(r[1] for r in results) == ["main", "side"], child.all_lines[-5:]
    for _, name, n, total, squares in results:
        assert int(n) > 0 and closed_form_ok(int(n), int(total), int(squares)), \
            f"thread {name}: wrong checksum for n={n}: total={total} squares={squares}"


def start_worker(python, spawn):
    from conftest import TARGETS_DIR
    child = spawn([python, str(TARGETS_DIR / "work.py")], stdin=subprocess.PIPE)
    child.wait_line(lambda l: l == "ready", 20)
    child.wait_line(lambda l: l.startswith("tick "), 10)
    return child


def test_sigkill_dumper_mid_read(python, pyteleport_bin, spawn):
    child = start_worker(python, spawn)
    rng = random.Random(1234)
    for trial in range(36):
        argv = [pyteleport_bin, "dump", "--pid", str(child.pid)] + (["--json"] if trial % 2 else [])
        dumper = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.04))
        dumper.send_signal(signal.SIGKILL)
        dumper.wait(10)
        states = wait_not_stopped(child.pid)
        assert states and not (set(states.values()) & STOPPED_STATES), \
            f"trial {trial}: target left stopped after the dumper was killed: {states}"
        assert child.proc.poll() is None, f"trial {trial}: target died: {child.stderr_text}"
    assert_progressing(child, "after killed dumps")
    finish_and_verify(child)


def test_target_resumes_after_dump(python, run_dump, spawn):
    child = start_worker(python, spawn)
    for json_out in (False, True, False):
        res = run_dump(child.pid, json_out=json_out)
        assert res.returncode == 0, res.stderr
        states = task_states(child.pid)
        assert not (set(states.values()) & STOPPED_STATES), f"target stopped right after dump: {states}"
        assert_progressing(child, "after a dump")
    dump = json.loads(res.stdout) if json_out else json.loads(run_dump(child.pid, json_out=True).stdout)
    names = {t["name"] for t in dump["threads"]}
    assert "MainThread" in names
    finish_and_verify(child)
