"""The installed package: a version above the original pyteleport's (0.3.4 on PyPI), a
supervisor binary shipped inside it, and a clear error, not a loop, when that binary is
missing."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ["3.11", "3.12", "3.13"]
versions = pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])


def venv(version, exe="python"):
    path = ROOT / ".venvs" / f"py{version}" / "bin" / exe
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup (CPython {version} is required)")
    return str(path)


def release(text):
    return tuple(int(x) for x in text.split("+")[0].split(".")[:3])


@versions
def test_installed_version_is_above_the_originals(version):
    p = subprocess.run([venv(version), "-c", "import importlib.metadata as m, pyteleport, os; "
                        "print(m.version('pyteleport')); print(os.path.isfile(pyteleport.binary_path()))"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    installed, has_binary = p.stdout.split()
    assert release(installed) > (0, 3, 4), installed
    assert has_binary == "True"
    # The supervisor reports the same version.
    b = subprocess.run([venv(version, "pyteleport"), "--version"], capture_output=True, text=True, timeout=30)
    assert b.returncode == 0 and b.stdout.split()[-1] == installed, b.stdout + b.stderr


@pytest.fixture
def package_without_binary(tmp_path):
    """A copy of the installed package with no _bin/, first on the path."""
    site = subprocess.run([venv("3.12"), "-c", "import pyteleport, os; print(os.path.dirname(os.path.dirname(pyteleport.__file__)))"],
                          capture_output=True, text=True, timeout=30).stdout.strip()
    dest = tmp_path / "site"
    shutil.copytree(Path(site) / "pyteleport", dest / "pyteleport", ignore=shutil.ignore_patterns("_bin", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTELEPORT_BIN"}
    # The venv's bin/ (with the `pyteleport` console script) on PATH: it must not be taken
    # for the supervisor.
    env["PATH"] = f"{Path(venv('3.12')).parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(dest)
    return dest, env


def test_a_missing_binary_is_a_clear_error_not_a_loop(package_without_binary, tmp_path):
    dest, env = package_without_binary
    prog = tmp_path / "prog.py"
    prog.write_text("import pyteleport\n"
                    "assert pyteleport.__file__.startswith(%r), pyteleport.__file__\n"
                    "try:\n    pyteleport.dummy_teleport()\n"
                    "except pyteleport.TeleportError as e:\n    print('error:', e)\n" % str(dest))
    p = subprocess.run([venv("3.12"), str(prog)], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    assert "supervisor binary" in p.stdout and str(dest / "pyteleport" / "_bin" / "pyteleport") in p.stdout and "missing" in p.stdout, p.stdout
    # The console scripts' entry points: one line, exit 1, quickly (no exec of themselves).
    for entry in ("main", "main_attach"):
        p = subprocess.run([venv("3.12"), "-c", f"from pyteleport._launcher import {entry}; {entry}()", "--version"],
                           capture_output=True, text=True, timeout=20, env=env)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert p.stderr.startswith("pyteleport: error: ") and "supervisor binary" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_pyteleport_bin_must_be_the_supervisor(package_without_binary):
    dest, env = package_without_binary
    # Pointing it at the console script (a Python file) is refused, not exec'd.
    env = {**env, "PYTELEPORT_BIN": venv("3.12", "pyteleport")}
    p = subprocess.run([venv("3.12"), "-c", "from pyteleport._launcher import main; main()", "--version"],
                       capture_output=True, text=True, timeout=20, env=env)
    assert p.returncode == 1 and "PYTELEPORT_BIN" in p.stderr and "not the pyteleport supervisor" in p.stderr, p.stderr
