"""Scenario suite: each program in tests/scenarios runs once with teleports disabled and
once for real; stdout and exit codes must match, and the output after a teleport must
come from a different process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.py"))
VERSIONS = ["3.11", "3.12", "3.13"]

# Runs a scenario with every teleport call replaced by a no-op: the reference output.
PLAIN = (
    "import sys, runpy, pyteleport\n"
    "noop = lambda *a, **k: None\n"
    "pyteleport.tp_dummy = pyteleport.dummy_teleport = noop\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def venv_python(version):
    exe = ROOT / ".venvs" / f"py{version}" / "bin" / "python"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)")
    return str(exe)


def run(args, timeout=60, stdin=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, input=stdin)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_matches_plain_run(version, scenario):
    py = venv_python(version)
    plain = run([py, "-c", PLAIN, str(scenario)])
    moved = run([py, str(scenario)])
    assert moved[0] == plain[0], f"exit codes differ\nplain stderr:\n{plain[2]}\nteleported stderr:\n{moved[2]}"
    assert moved[1] == plain[1], f"stdout differs\nteleported stderr:\n{moved[2]}"


PLAIN_MODULE = (
    "import sys, runpy, pyteleport\n"
    "pyteleport.tp_dummy = pyteleport.dummy_teleport = lambda *a, **k: None\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_python_dash_m_and_stdin(version):
    """`python -m pkg.mod` (its sibling module's changed state carried) and a program
    read from stdin."""
    py = venv_python(version)
    programs = ROOT / "tests" / "programs"
    def run_in(args, stdin=None):
        p = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=programs, input=stdin)
        return p.returncode, p.stdout, p.stderr
    plain = run_in([py, "-c", PLAIN_MODULE, "pkg.mod", "--opt", "a b"])
    moved = run_in([py, "-m", "pkg.mod", "--opt", "a b"])
    assert plain[0] == 0, plain[2]
    assert moved[:2] == plain[:2], moved[2]
    source = (ROOT / "tests" / "scenarios" / "nested_arith.py").read_text()
    plain = run([py, "-c", "import sys, pyteleport\n"
                 "pyteleport.tp_dummy = pyteleport.dummy_teleport = lambda *a, **k: None\n"
                 "exec(compile(sys.stdin.read(), '<stdin>', 'exec'), {'__name__': '__main__'})"], stdin=source)
    moved = run([py, "-"], stdin=source)
    assert plain[0] == 0, plain[2]
    assert moved[:2] == plain[:2], moved[2]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_seed_example_prints_two_pids(version):
    code, out, err = run([venv_python(version), str(ROOT / "examples" / "seed.py")])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1].endswith("hello world!")
    pids = {l.split("]")[0] for l in lines}
    assert len(pids) == 2, out


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_snapshot_file_restores_many_times_and_refuses_corruption(version, tmp_path):
    py = venv_python(version)
    snap = tmp_path / "state.snap"
    script = tmp_path / "ckpt.py"
    script.write_text(
        "from pyteleport import teleport\n"
        "def work():\n"
        "    items = [1, 2, 3]\n"
        f"    teleport(to_file={str(snap)!r}, exit=False)\n"
        "    items.append(4)\n"
        "    return sum(items)\n"
        "print('result', work())\n"
    )
    code, out, err = run([py, str(script)])
    assert (code, out) == (0, "result 10\n"), err
    binary = ROOT / "target" / "release" / "pyteleport"
    for _ in range(2):
        code, out, err = run([str(binary), "restore", str(snap), "--python", py])
        assert (code, out) == (0, "result 10\n"), err
    code, out, err = run([str(binary), "inspect", str(snap)])
    assert code == 0 and "in work" in out and "items = [1, 2, 3]" in out, out + err
    data = snap.read_bytes()
    bad = tmp_path / "bad.snap"
    bad.write_bytes(data[:-5])
    code, out, err = run([str(binary), "restore", str(bad), "--python", py])
    assert code != 0 and "truncated" in err and "panicked" not in err and out == ""
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    code, out, err = run([str(binary), "restore", str(bad), "--python", py])
    assert code != 0 and "checksum" in err and out == ""


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_uncarriable_state_raises_in_original_which_goes_on(version, tmp_path):
    script = tmp_path / "refuse.py"
    script.write_text(
        "import socket\n"
        "from pyteleport import dummy_teleport, TeleportError\n"
        "def f():\n"
        "    conn = socket.socket()\n"
        "    try:\n"
        "        dummy_teleport()\n"
        "    except TeleportError as e:\n"
        "        print('refused:', 'f' in str(e), 'socket' in str(e).lower())\n"
        "    conn.close()\n"
        "    return 'still running'\n"
        "print(f())\n"
    )
    code, out, err = run([venv_python(version), str(script)])
    assert code == 0, err
    assert out == "refused: True True\nstill running\n", out + err


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_thread_that_cannot_be_carried_is_refused_by_name_not_dropped(version, tmp_path):
    # A thread blocked in a call that cannot be made again (a read from a pipe nobody
    # carries) would be lost: the teleport is refused naming it, and every thread goes on
    # here. Once that thread is done, the teleport moves the program with its heartbeat.
    script = tmp_path / "threads.py"
    script.write_text(
        "import os, threading, time\n"
        "from pyteleport import dummy_teleport, TeleportError\n"
        "os.environ['PYTELEPORT_THREAD_TIMEOUT'] = '1'  # how long the refusal waits\n"
        "ticks = []\n"
        "stop = threading.Event()\n"
        "def heartbeat():\n"
        "    while not stop.is_set():\n"
        "        ticks.append(1)\n"
        "        time.sleep(0.01)\n"
        "r, w = os.pipe()\n"
        "got = []\n"
        "def reader():\n"
        "    got.append(os.read(r, 10))\n"
        "beat = threading.Thread(target=heartbeat, name='heartbeat')\n"
        "beat.start()\n"
        "blocked = threading.Thread(target=reader, name='pipe-reader')\n"
        "blocked.start()\n"
        "time.sleep(0.05)\n"
        "pid = os.getpid()\n"
        "try:\n"
        "    dummy_teleport()\n"
        "    print('moved')\n"
        "except TeleportError as e:\n"
        "    print('refused:', 'pipe-reader' in str(e), 'posix.read' in str(e))\n"
        "n = len(ticks)\n"
        "time.sleep(0.1)\n"
        "print('ticking', len(ticks) > n, os.getpid() == pid)\n"
        "os.write(w, b'hello')\n"
        "blocked.join()\n"
        "print('read', got)\n"
        "dummy_teleport()\n"
        "n = len(ticks)\n"
        "time.sleep(0.1)\n"
        "print('moved, ticking', len(ticks) > n, os.getpid() != pid)\n"
        "stop.set()\n"
        "beat.join()\n"
        "print('joined', beat.is_alive())\n"
    )
    code, out, err = run([venv_python(version), str(script)])
    assert code == 0, err
    assert out == ("refused: True True\nticking True True\nread [b'hello']\n"
                   "moved, ticking True True\njoined False\n"), out + err


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_sqlite_transaction_in_flight_is_refused_not_lost(version, tmp_path):
    # Its uncommitted changes live in the original's connection only: the teleport is
    # refused saying why, the program commits and goes on, and moves once committed.
    script = tmp_path / "tx.py"
    script.write_text(
        "import os, sqlite3\n"
        "from pyteleport import dummy_teleport, TeleportError\n"
        f"db = sqlite3.connect({str(tmp_path / 'x.db')!r})\n"
        "db.execute('CREATE TABLE t (v)')\n"
        "db.execute('INSERT INTO t VALUES (1)')\n"
        "pid = os.getpid()\n"
        "try:\n"
        "    dummy_teleport()\n"
        "    print('moved')\n"
        "except TeleportError as e:\n"
        "    print('refused:', 'transaction is open' in str(e), os.getpid() == pid)\n"
        "db.commit()\n"
        "dummy_teleport()\n"
        "print('moved:', os.getpid() != pid, db.execute('SELECT sum(v) FROM t').fetchone())\n"
    )
    code, out, err = run([venv_python(version), str(script)])
    assert code == 0, err
    assert out == "refused: True True\nmoved: True (1,)\n", out + err


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_frame_called_from_c_is_refused_and_original_goes_on(version):
    code, out, err = run([venv_python(version), str(ROOT / "tests" / "programs" / "c_callback_refused.py")])
    assert code == 0, err
    assert out == "refused: True True\n[-3, -2, -1]\noriginal goes on\n".replace("[-3, -2, -1]", "[3, 2, 1]"), out + err


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_traceback_after_restore_shows_original_frames(version):
    py = venv_python(version)
    scenario = str(ROOT / "tests" / "scenarios" / "uncaught_after.py")
    plain = run([py, "-c", PLAIN, scenario])
    moved = run([py, scenario])
    assert moved[0] == plain[0] == 1
    def frames(stderr):
        return [l.strip() for l in stderr.splitlines() if l.strip().startswith("File ") and "uncaught_after.py" in l]
    # The plain run's traceback goes through runpy; compare the program's own frames.
    assert frames(moved[2]) == frames(plain[2]), moved[2]
    assert moved[2].strip().splitlines()[-1] == "ZeroDivisionError: integer division or modulo by zero"
    assert "pyteleport/restore.py" not in moved[2], moved[2]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_shell_destination_and_original_api(version, tmp_path):
    py = venv_python(version)
    script = tmp_path / "shell.py"
    script.write_text(
        "import os\n"
        "from pyteleport import tp_bash\n"
        "def f():\n"
        "    before = os.getpid()\n"
        "    tp_bash()\n"
        "    print('moved', before != os.getpid())\n"
        "f()\n"
    )
    code, out, err = run([py, str(script)])
    assert (code, out) == (0, "moved True\n"), err
    # As the original's: the shell arguments first, the restore command last.
    script.write_text(
        "import os\n"
        "from pyteleport import tp_bash, tp_shell\n"
        "def f():\n"
        "    before = os.getpid()\n"
        "    tp_bash('sh', '-c')\n"
        "    print('moved', before != os.getpid())\n"
        "    middle = os.getpid()\n"
        "    tp_shell('env', 'sh', '-c')\n"
        "    print('again', middle != os.getpid())\n"
        "f()\n"
    )
    code, out, err = run([py, str(script)])
    assert (code, out) == (0, "moved True\nagain True\n"), err
    # dump() as the original's: False where the program goes on, True where it resumes.
    snap = tmp_path / "orig.snap"
    script.write_text(
        "import io, pyteleport\n"
        "def f():\n"
        "    x = [1, 2]\n"
        f"    if pyteleport.dump({str(snap)!r}):\n"
        "        print('resumed', x)\n"
        "    else:\n"
        "        print('saved', x)\n"
        "    buffer = io.BytesIO()\n"
        "    if not pyteleport.dump(buffer):\n"
        "        print('into a file object', buffer.getvalue()[:4] == open(" + repr(str(snap)) + ", 'rb').read()[:4])\n"
        "f()\n"
    )
    code, out, err = run([py, str(script)])
    assert (code, out) == (0, "saved [1, 2]\ninto a file object True\n"), err
    code, out, err = run([str(ROOT / "target" / "release" / "pyteleport"), "restore", str(snap), "--python", py])
    assert code == 0 and out.startswith("resumed [1, 2]\n"), err


def test_snapshot_from_another_python_version_is_refused(tmp_path):
    snap = tmp_path / "v311.snap"
    script = tmp_path / "s.py"
    script.write_text(f"from pyteleport import teleport\nteleport(to_file={str(snap)!r}, exit=False)\nprint('ran')\n")
    code, out, err = run([venv_python("3.11"), str(script)])
    assert code == 0, err
    code, out, err = run([str(ROOT / "target" / "release" / "pyteleport"), "restore", str(snap), "--python", venv_python("3.12")])
    assert code != 0 and out == "" and "3.11" in err and "3.12" in err, err


DELIVERY_PROGRAM = (
    "import os, sys\n"
    "from pyteleport import teleport, TeleportError\n"
    "def job():\n"
    "    before = os.getpid()\n"
    "    total = sum(range(10))\n"
    "    try:\n"
    "        teleport(to_shell=sys.argv[1])\n"
    "    except TeleportError as e:\n"
    "        print('went on in the original:', before == os.getpid(), file=sys.stderr)\n"
    "        print('reason:', e, file=sys.stderr)\n"
    "        print('still here', total)\n"
    "        return 5\n"
    "    print('moved', before != os.getpid(), total)\n"
    "    return 0\n"
    "sys.exit(job())\n"
)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("command,said", [
    ("exit 255", "without confirming"),                      # ssh refused
    ("no-such-pyteleport-command -", "not found"),           # pyteleport missing there
    ("cat > /dev/null", "no confirmation within"),           # reads it all, never answers
    ("true", "without confirming"),                          # never reads, exits 0
    ("head -c 100 > /dev/null", "without confirming"),       # reads half, exits 0
    ("OTHER -m pyteleport.restore -", "refused"),            # another Python minor there
])
def test_a_failed_shell_delivery_raises_and_the_program_goes_on(version, command, said, tmp_path):
    """The original lets go only once the far end has confirmed the whole snapshot and its
    rebuild: every other outcome is a TeleportError naming the command, and the
    program goes on in the original."""
    py = venv_python(version)
    other = next(v for v in VERSIONS if v != version)
    command = command.replace("OTHER", venv_python(other))
    script = tmp_path / "deliver.py"
    script.write_text(DELIVERY_PROGRAM)
    p = subprocess.run([py, str(script), command], capture_output=True, text=True, timeout=60, cwd=ROOT,
                       env={**os.environ, "PYTELEPORT_CONFIRM_TIMEOUT": "3"})
    assert p.returncode == 5, p.stderr
    assert p.stdout == "still here 45\n", p.stderr
    assert "went on in the original: True" in p.stderr
    assert f"`{command}`" in p.stderr and said in p.stderr, p.stderr


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("how", ["cli", "module"])
def test_a_confirmed_shell_delivery_runs_the_program_there(version, how, tmp_path):
    """Through `pyteleport restore -` and `python -m pyteleport.restore -`, with the
    program's output coming back through the command's and its exit status the original's."""
    py = venv_python(version)
    binary = str(ROOT / ".venvs" / f"py{version}" / "bin" / "pyteleport")
    command = f"{binary} restore -" if how == "cli" else f"{py} -m pyteleport.restore -"
    script = tmp_path / "deliver.py"
    script.write_text(DELIVERY_PROGRAM.replace("    return 0\n", "    print('to stderr', file=sys.stderr)\n    return 3\n"))
    p = subprocess.run([py, str(script), command], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert (p.returncode, p.stdout) == (3, "moved True 45\n"), p.stderr
    assert "to stderr" in p.stderr and "PYTELEPORT" not in p.stdout + p.stderr


def test_restore_with_another_interpreter_uses_its_standard_library(tmp_path):
    """`pyteleport restore --python OTHER` (Python installed elsewhere, as on another
    machine): the program keeps its own sys.path entries, but the original interpreter's
    standard library gives way to OTHER's, so later imports work."""
    py = venv_python("3.11")
    other = "/usr/bin/python3.11"  # Debian's 3.11.2: same minor, installed elsewhere
    assert Path(other).exists(), "scripts/setup installs Debian's python3.11"
    snap = tmp_path / "s.snap"
    script = tmp_path / "later_imports.py"
    script.write_text(
        "import sys, pyteleport\n"
        "def f():\n"
        "    n = 41\n"
        f"    if pyteleport.dump({str(snap)!r}):\n"
        "        import json, decimal, csv\n"
        "        print(json.dumps({'n': n + 1}), decimal.Decimal('1.5') * 2, sys.executable)\n"
        "        print([p for p in sys.path if p.endswith('python3.11')])\n"
        "f()\n"
    )
    code, out, err = run([py, str(script)])
    assert code == 0, err
    site = subprocess.run([py, "-c", "import pyteleport, os; print(os.path.dirname(os.path.dirname(pyteleport.__file__)))"],
                          capture_output=True, text=True).stdout.strip()
    p = subprocess.run([str(ROOT / ".venvs" / "py3.11" / "bin" / "pyteleport"), "restore", str(snap), "--python", other],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": site})
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ['{"n": 42} 3.0 ' + other, "['/usr/lib/python3.11']"], p.stdout + p.stderr


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_teleport_from_the_interactive_interpreter_is_refused_and_the_session_goes_on(version):
    """The REPL's loop is C code reading the terminal: a move would end the session. It is
    refused with TeleportError, and the session goes on."""
    py = venv_python(version)
    session = (
        "import pyteleport\n"
        "try:\n"
        "    pyteleport.dummy_teleport()\n"
        "except pyteleport.TeleportError as e:\n"
        "    print('refused:', e)\n"
        "\n"
        "print('session goes on', 6 * 7)\n"
    )
    p = subprocess.run([py, "-i", "-q"], input=session, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "refused: cannot teleport" in p.stdout and "interactive interpreter" in p.stdout, p.stdout + p.stderr
    assert "session goes on 42" in p.stdout
