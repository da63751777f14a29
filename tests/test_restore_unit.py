"""Unit tests of pyteleport.restore's pure functions (exception tables, the resume
prologue, name resolution, the Enum helpers, the snapshot pipe reader), run inside each
supported interpreter's venv: tests/restore_unit_checks.py runs there once per version
and reports every check."""
import ast
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKS = Path(__file__).resolve().parent / "restore_unit_checks.py"
VERSIONS = ["3.11", "3.12", "3.13"]
NAMES = [n.name for n in ast.parse(CHECKS.read_text()).body if isinstance(n, ast.FunctionDef) and n.name.startswith("check_")]

_results = {}


def results(version):
    if version not in _results:
        exe = ROOT / ".venvs" / f"py{version}" / "bin" / "python"
        if not exe.exists():
            pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)")
        p = subprocess.run([str(exe), str(CHECKS)], capture_output=True, text=True, timeout=120, cwd="/")
        assert p.returncode == 0, p.stderr
        _results[version] = json.loads(p.stdout)
    return _results[version]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
@pytest.mark.parametrize("name", NAMES)
def test_restore_unit(version, name):
    got = results(version)
    assert name in got, f"{name} did not run"
    assert got[name] is None, got[name]
