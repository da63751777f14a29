"""Snapshots under a key (`--key-file`, PYTELEPORT_KEY_FILE): written with an HMAC-SHA256
tag, read only when the tag verifies, checked before anything of the snapshot runs."""
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ["3.11", "3.12", "3.13"]
HEADER_LEN = 32

PROGRAM = """\
import sys, pyteleport
def f():
    secret = list(range(5))
    if pyteleport.dump(sys.argv[1]):
        open(sys.argv[2], "w").write("ran")
        print("resumed", secret)
f()
"""


def venv(version, name):
    exe = ROOT / ".venvs" / f"py{version}" / "bin" / name
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run scripts/setup (CPython {version} is required)")
    return str(exe)


def tamper(data):
    """Change one body byte and fix the CRC, so that only the tag can tell."""
    data = bytearray(data)
    body_len = struct.unpack_from("<Q", data, HEADER_LEN - 12)[0]
    data[HEADER_LEN + body_len // 2] ^= 0x01
    crc = zlib.crc32(bytes(data[HEADER_LEN:HEADER_LEN + body_len]))
    struct.pack_into("<I", data, HEADER_LEN - 4, crc)
    return bytes(data)


@pytest.mark.parametrize("version", VERSIONS, ids=[f"py{v}" for v in VERSIONS])
def test_a_snapshot_restores_only_under_its_own_key_and_untouched(version, tmp_path):
    key, other = tmp_path / "key", tmp_path / "other"
    key.write_bytes(os.urandom(32))
    other.write_bytes(os.urandom(32))
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    snap, marker = tmp_path / "s.snap", tmp_path / "ran"
    env = {**os.environ, "PYTELEPORT_KEY_FILE": str(key)}
    p = subprocess.run([venv(version, "python"), str(prog), str(snap), str(marker)], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    binary = venv(version, "pyteleport")

    def restore(path, *flags, **kw):
        return subprocess.run([binary, *flags, "restore", str(path)], capture_output=True, text=True, timeout=60, **kw)

    ok = restore(snap, "--key-file", str(key))
    assert (ok.returncode, ok.stdout) == (0, "resumed [0, 1, 2, 3, 4]\n"), ok.stderr
    marker.unlink()
    altered = tmp_path / "altered.snap"
    altered.write_bytes(tamper(snap.read_bytes()))
    for path, flags, said in [
        (altered, ["--key-file", str(key)], "does not verify"),
        (snap, ["--key-file", str(other)], "does not verify"),
    ]:
        r = restore(path, *flags)
        assert r.returncode != 0 and said in r.stderr and r.stdout == "", r.stderr
        assert not marker.exists(), "nothing of a refused snapshot may run"
    # A snapshot written without a key is refused under one.
    plain = tmp_path / "plain.snap"
    p = subprocess.run([venv(version, "python"), str(prog), str(plain), str(marker)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = restore(plain, env={**os.environ, "PYTELEPORT_KEY_FILE": str(key)})
    assert r.returncode != 0 and "no authentication tag" in r.stderr and not marker.exists(), r.stderr
    # The Python restore engine checks too.
    r = subprocess.run([venv(version, "python"), "-m", "pyteleport.restore", str(altered)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode != 0 and "does not verify" in r.stderr and not marker.exists(), r.stderr


@pytest.mark.parametrize("version", ["3.12"])
def test_a_tampered_checkpoint_is_never_resumed_under_a_key(version, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    d = tmp_path / "ckpt"
    job = ROOT / "tests" / "attach_targets" / "again_and_again.py"
    binary = venv(version, "pyteleport")
    p = subprocess.run([binary, "--key-file", str(key), "run", "--checkpoint-dir", str(d), "--every", "300ms",
                        "--", venv(version, "python"), str(job), "80"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    snaps = sorted(d.glob("ckpt-*.snap"))
    assert len(snaps) >= 2, p.stderr
    # The newest altered, its manifest's size and checksum made to match: only the tag can tell.
    newest = snaps[-1]
    newest.write_bytes(tamper(newest.read_bytes()))
    manifest = newest.with_suffix(".json")
    import json
    info = json.loads(manifest.read_text())
    info["crc32"] = zlib.crc32(newest.read_bytes())
    manifest.write_text(json.dumps(info))
    listing = subprocess.run([binary, "--key-file", str(key), "checkpoints", str(d)], capture_output=True, text=True).stdout
    assert "does not verify" in listing, listing
    r = subprocess.run([binary, "--key-file", str(key), "run", "--resume", str(d)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"resumed {snaps[-2]}" in r.stderr, r.stderr
    assert f"skipped {newest}: " in r.stderr and "verify" in r.stderr.split(f"skipped {newest}: ")[1].splitlines()[0], r.stderr
