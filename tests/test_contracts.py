"""The Rust–Python contracts, each defined once in the Rust crate and exported by
pyteleport._native: the pyteleport._reducers table, the pipe messages, the snapshot header;
and a snapshot that decodes but does not hold together is refused cleanly."""
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ["3.11", "3.12", "3.13"]
BIN = os.environ.get("PYTELEPORT_BIN") or str(ROOT / "target" / "release" / "pyteleport")


def venv_python(version):
    exe = ROOT / ".venvs" / f"py{version}" / "bin" / "python"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)")
    return str(exe)


def run_py(version, code, *args, timeout=60, cwd=None):
    p = subprocess.run([venv_python(version), "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=cwd or "/")
    return p


versions = pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])


@versions
def test_reducers_table_matches_the_helpers(version):
    """Every entry of the Rust table (name, required, total positional parameters) is a
    function of pyteleport._reducers with exactly that signature."""
    p = run_py(version, """
        import importlib, inspect, json
        from pyteleport import _native
        mod = importlib.import_module(_native.REDUCERS_MODULE)
        out = []
        for name, required, total in _native.REDUCERS:
            fn = getattr(mod, name, None)
            if fn is None:
                out.append([name, required, total, None, None, "missing"])
                continue
            params = list(inspect.signature(fn).parameters.values())
            positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
            others = [q.kind.name for q in params if q not in positional]
            req = sum(q.default is q.empty for q in positional)
            out.append([name, required, total, req, len(positional), others])
        print(json.dumps(out))
    """)
    assert p.returncode == 0, p.stderr
    table = json.loads(p.stdout)
    assert table, "the table is empty"
    for name, required, total, req, n, others in table:
        assert others == [], f"{name}: {others}"
        assert (req, n) == (required, total), f"{name}: Rust says ({required}, {total}), Python has ({req}, {n})"


@versions
def test_report_protocol_round_trips(version):
    """The lines the supervisor writes, as the shim reads them through _native."""
    p = run_py(version, """
        import json
        from pyteleport import _native as n
        out = []
        for line in ["reduce 1 2 140000000000", "error cannot read x", "saved /tmp/a b.snap", "started 42", "exit 3",
                     "exit -1\\n", "bogus", "", "started x"]:
            m = n.decode_report(line)
            out.append(None if m is None else [m.kind] + [getattr(m, f) for f in type(m)._fields])
        out.append([n.encode_reply(123), n.encode_reply(error="no\\nway")])
        out.append([n.encode_readiness().decode(), n.encode_readiness("ValueError: a\\nb").decode()])
        out.append([n.GO.decode(), n.SHM_MARKER.decode(), n.RESTORE_DRIVER_KEY, n.DRIVER_PENDING_LOCAL])
        print(json.dumps(out))
    """)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got[:9] == [["reduce", [1, 2, 140000000000]], ["error", "cannot read x"], ["saved", "/tmp/a b.snap"],
                       ["started", 42], ["exit", 3], ["exit", -1], None, None, None]
    assert got[9] == ["123", "error no way"]
    assert got[10] == ["r", "eValueError: a b"]
    assert got[11] == ["g", "\0PYTELEPORT-SHM:", "_pyteleport_restore_driver", "pending"]


@versions
def test_records_name_their_fields(version):
    p = run_py(version, """
        from pyteleport import _native as n
        assert n.Node._fields == ("value", "type_id", "addr")
        assert n.ReduceValue.kind == "reduce" and n.ReduceValue._fields == ("callable", "args", "state", "listitems", "dictitems")
        assert n.Frame._fields[:2] == ("code", "lasti") and "localsplus" in n.Frame._fields
        assert {"resume", "keep", "for_iter", "exc_value", "init_self", "push"} == set(n.Plan._fields)
        print("ok")
    """)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """One real snapshot per version (a checkpoint of a small program), and the same with
    an object id out of range under a valid checksum."""
    out = {}
    d = tmp_path_factory.mktemp("snaps")
    for version in VERSIONS:
        good = d / f"good{version}.snap"
        prog = d / "prog.py"
        prog.write_text("import sys, pyteleport\n"
                        "def main():\n"
                        "    x = [1, 2, 3]\n"
                        "    pyteleport.teleport(to_file=sys.argv[1], exit=False)\n"
                        "    print('after', x)\n"
                        "main()\n")
        p = subprocess.run([venv_python(version), str(prog), str(good)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and good.exists(), p.stderr
        bad = d / f"bad{version}.snap"
        p = run_py(version, "import sys; from pyteleport import _native\n"
                   "open(sys.argv[2], 'wb').write(_native._test_snapshot_with_bad_id(open(sys.argv[1], 'rb').read()))",
                   str(good), str(bad))
        assert p.returncode == 0, p.stderr
        out[version] = (good, bad)
    return out


def _one_clean_line(p):
    assert p.returncode != 0
    err = p.stderr.strip()
    assert "Traceback" not in err and "panicked" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


@versions
def test_good_snapshot_restores(version, snapshots):
    good, _ = snapshots[version]
    p = subprocess.run([venv_python(version), "-m", "pyteleport.restore", str(good)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "after [1, 2, 3]\n", p.stderr


@versions
def test_corrupt_snapshot_is_refused_cleanly(version, snapshots):
    _, bad = snapshots[version]
    p = subprocess.run([venv_python(version), "-m", "pyteleport.restore", str(bad)], capture_output=True, text=True, timeout=60)
    err = _one_clean_line(p)
    assert "inconsistent snapshot" in err and "refers to object" in err, err
    assert p.stdout == ""
    # The same through the CLI: `pyteleport restore` and `pyteleport inspect`.
    for args in (["restore", str(bad), "--python", venv_python(version)], ["inspect", str(bad)]):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
        err = _one_clean_line(p)
        assert "refers to object" in err, (args, err)
