"""Property test: dupcore's Rust tar header writer against CPython's own ``TarInfo.tobuf()``.

100,000 random entries (all entry types, long/Unicode/undecodable names at edge lengths, large,
negative and float numbers) are compared byte for byte with ``tobuf(PAX_FORMAT, "utf-8",
"replace")`` in this interpreter; every tenth also as a whole block with data and padding. Where
other CPython 3.9–3.13 interpreters are installed, each checks 10,000 more entries in a subprocess.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import tar_cases
from dupcore import tarblocks

TESTS = Path(__file__).resolve().parent
PACKAGE_ROOT = Path(tarblocks.__file__).resolve().parent.parent


def test_random_entries_match_tobuf():
    failures, seen = tar_cases.run(100_000, seed=20240604)
    assert not failures, "\n".join(failures)
    # the generator really reaches every PAX record kind and entry type
    for key in ("hdrcharset=BINARY", "path", "linkpath", "uname", "gname", "uid", "gid", "size",
                "mtime"):
        assert seen[key] >= 1000, (key, seen)
    for t in "0123456":
        assert seen[f"type {t}"] >= 1000, (t, seen)
    assert seen["pax"] < 80_000, "too few entries without a PAX header"
    assert seen["declined"] < 10_000, seen


def test_canaries_match_tobuf():
    for ti in tarblocks.canary_tarinfos():
        assert tarblocks.header(ti) == ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "replace"), ti.name


@pytest.mark.parametrize("name", [
    "snapshot/" + "a" * n for n in (90, 91, 92, 146, 147, 246, 247, 1000)])
@pytest.mark.parametrize("type_", [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE])
def test_edge_lengths(name, type_):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    if type_ == tarfile.SYMTYPE:
        ti.linkname = name[9:]
    assert tarblocks.header(ti) == ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "replace")


def test_declines_what_it_does_not_reproduce():
    ti = tarfile.TarInfo("snapshot/x")
    ti.pax_headers = {"comment": "set by a caller"}
    assert tarblocks.header(ti) is None
    ti = tarfile.TarInfo("snapshot/x")
    ti.uid = 2**64
    assert tarblocks.header(ti) is None
    ti.uid = 0
    ti.type = b"00"
    assert tarblocks.header(ti) is None
    ti.type = tarfile.CHRTYPE
    ti.devmajor = 2**21  # tobuf raises ValueError: the caller falls back and raises the same
    assert tarblocks.header(ti) is None
    ti.devmajor = 0
    ti.name = "snapshot/\udc41"  # not a surrogateescape byte: tobuf raises UnicodeEncodeError
    assert tarblocks.header(ti) is None
    ti.name = None
    assert tarblocks.header(ti) is None


def test_tarfile_version_gate(monkeypatch):
    assert tarblocks.tarfile_unsupported() is None
    monkeypatch.setattr(tarfile, "DEFAULT_FORMAT", tarfile.GNU_FORMAT)
    assert "PAX" in tarblocks.tarfile_unsupported()
    monkeypatch.setattr(sys, "version_info", (3, 14, 0, "final", 0))
    assert "not verified" in tarblocks.tarfile_unsupported()


def _other_pythons():
    """CPython 3.9–3.13 interpreters on this machine other than the running one."""
    found = {}
    for minor in range(9, 14):
        if minor == sys.version_info[1]:
            continue
        cands = [shutil.which(f"python3.{minor}")] + sorted(
            glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3.{minor}")))
        for c in cands:
            if c and os.access(c, os.X_OK):
                found[f"3.{minor}"] = c
    return found


def test_other_python_versions():
    pythons = _other_pythons()
    if not pythons:
        pytest.skip("no other CPython 3.9-3.13 installed")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT), PYTHONNOUSERSITE="1")
    procs = {v: subprocess.Popen([exe, "-S", str(TESTS / "tar_cases.py"), "10000", v[2:]],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for v, exe in pythons.items()}
    results = {v: p.communicate(timeout=300)[0].decode("utf-8", "replace")
               for v, p in procs.items()}
    for v, out in results.items():
        if "No module named" in out or "undefined symbol" in out:
            continue  # an interpreter that cannot load the abi3 module or the stdlib here
        assert procs[v].returncode == 0, f"Python {v}:\n{out[-3000:]}"
        assert "10000 passed, 0 failed" in out, out[-3000:]
