"""Hostile archives: a restore never writes outside its target.

Anyone who can write to the storage of an unencrypted backup can craft a volume holding a
symlink ``snapshot/lnk`` pointing outside the restore target, followed by ``snapshot/lnk/file``.
Stock duplicity writes ``file`` through the link; dupcore refuses that entry with a warning
naming it, restores everything else, and leaves the outside directory untouched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile

import pytest
from helpers import clean_env, run_duplicity

pytestmark = pytest.mark.e2e


def _craft(archive, outside):
    """Adds ``snapshot/lnk/file`` and ``snapshot/lnk/sub/deeper`` after the symlink in volume
    1 and updates the manifest's hash, as an attacker with write access to the storage could."""
    vol = next(p for p in archive.iterdir() if p.name.endswith(".vol1.difftar.gz"))
    members = []
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(vol.read_bytes()))) as tf:
        for ti in tf:
            data = tf.extractfile(ti).read() if ti.isreg() else None
            members.append((ti, data))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
            if ti.name == "snapshot/lnk":
                evil = tarfile.TarInfo("snapshot/lnk/file")
                evil.size, evil.mtime, evil.mode = 7, ti.mtime, 0o644
                tf.addfile(evil, io.BytesIO(b"escaped"))
                sub = tarfile.TarInfo("snapshot/lnk/sub")
                sub.type, sub.mtime, sub.mode = tarfile.DIRTYPE, ti.mtime, 0o755
                tf.addfile(sub)
                deeper = tarfile.TarInfo("snapshot/lnk/sub/deeper")
                deeper.size, deeper.mtime, deeper.mode = 7, ti.mtime, 0o644
                tf.addfile(deeper, io.BytesIO(b"escaped"))
    vol.write_bytes(gzip.compress(out.getvalue()))
    sha1 = hashlib.sha1(vol.read_bytes()).hexdigest()
    manifest = next(p for p in archive.iterdir() if p.name.endswith(".manifest"))
    text = re.sub(rb"Hash SHA1 [0-9a-f]{40}", b"Hash SHA1 " + sha1.encode(),
                  manifest.read_bytes(), count=1)
    manifest.write_bytes(text)
    assert os.listdir(outside) == []


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    src, outside = base / "src", base / "outside"
    src.mkdir()
    outside.mkdir()
    (src / "a.txt").write_bytes(b"a" * 1000)
    os.symlink(outside, src / "lnk")
    (src / "z.txt").write_bytes(b"z" * 1000)
    url = f"file://{base}/archive"
    run_duplicity(["full", "--no-encryption", str(src), url], clean_env(None, "dupcore"))
    _craft(base / "archive", outside)
    return base, url, outside


@pytest.mark.parametrize("mode", ["dupcore", "stock"])
def test_symlink_then_member_below_it(crafted, mode):
    base, url, outside = crafted
    for p in outside.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    target = base / f"restored-{mode}"
    res = run_duplicity(["restore", "--no-encryption", "--archive-dir", str(base / f"c-{mode}"),
                         url, str(target)], clean_env(None, mode), check=False)
    escaped = sorted(p.name for p in outside.iterdir())
    if mode == "stock":
        # the crafted archive does what the issue describes: stock writes outside its target
        assert "file" in escaped, res.text()
        return
    assert res.returncode == 0, res.text()
    assert escaped == [], res.text()
    assert (target / "a.txt").read_bytes() == b"a" * 1000
    assert (target / "z.txt").read_bytes() == b"z" * 1000
    assert os.readlink(target / "lnk") == str(outside)
    assert b"is a symbolic link, and the restore stays inside its target" in res.output
    assert b"Error '" in res.output and b"processing lnk/file" in res.output
