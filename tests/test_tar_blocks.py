"""Cross-tests of the ``tar`` component: difftars written with dupcore's Rust tar blocks against
stock duplicity 3.2.1, on the odd entries of docs/formats.md §4.8 and beyond.

The tree has names at the PAX edge lengths once prefixed with ``snapshot/`` (99/100/101/155/256
characters), long and undecodable (non-UTF-8) names and link targets, Unicode, a fifo, a device
when the machine allows one, ids beyond the ustar range, a time beyond 8**11 seconds, and files
of exactly 64 KiB and of several 64 KiB chunks under a long name. A full and an incremental
backup (with deletions and a changed file) by stock and by dupcore must hold byte-identical tar
streams, and stock must restore dupcore's chain.
"""
from __future__ import annotations

import gzip
import io
import os
import random
import re
import tarfile

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot

pytestmark = pytest.mark.e2e

MTIME = 1_700_000_000
BIG_UID = 4_000_000  # beyond 8**7: a PAX uid record, no user name


def _name(n):
    """A file name that makes ``snapshot/<name>`` exactly ``n`` characters."""
    return "e" * (n - len("snapshot/"))


def make_tree(root):
    """The tree described in the module docstring; returns the extra checks it could not make."""
    rng = random.Random(77)
    root.mkdir()
    skipped = []
    for n in (99, 100, 101, 155, 256):
        (root / _name(n)).write_bytes(b"%d" % n)
    (root / "d" / _name(100)).mkdir(parents=True)  # a directory name crossing 100 with its '/'
    (root / "d" / _name(99)).write_bytes(b"")
    raw = bytes(root) + b"/"
    os.mkdir(raw + b"bad\xff\xfe dir")
    with open(raw + b"bad\xff\xfe dir/" + b"x\xe9" * 60, "wb") as f:  # long and not UTF-8
        f.write(b"latin-1 name")
    (root / ("unicodé ✓ " * 12)).write_bytes(b"long unicode")
    (root / "café").write_bytes(b"short unicode")
    os.symlink("t" * 150, root / "long-link")
    os.symlink(b"caf\xe9/target", raw + b"bad-link")
    os.symlink("ziel/äöü", root / "unicode-link")
    os.mkfifo(root / "fifo")
    try:
        os.mknod(root / "null-dev", 0o600 | 0o020000, os.makedev(1, 3))
    except OSError:
        skipped.append("device")
    (root / "exact64k").write_bytes(rng.randbytes(65536))
    (root / ("multi" * 30)).write_bytes(rng.randbytes(65536 * 2 + 7))
    (root / "empty").write_bytes(b"")
    (root / "big-owner").write_bytes(b"owned by a big uid")
    try:
        os.chown(root / "big-owner", BIG_UID, BIG_UID)
    except OSError:
        skipped.append("big uid")
    (root / "far-future").write_bytes(b"mtime past 8**11")
    for dirpath, dirnames, filenames in os.walk(bytes(root)):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (MTIME, MTIME), follow_symlinks=False)
    try:
        os.utime(root / "far-future", (8**11 + 5, 8**11 + 5))
    except OSError:
        skipped.append("far-future mtime")
    os.utime(bytes(root), (MTIME, MTIME))
    return skipped


def change_tree(root):
    """Deletions (file, fifo, symlinks, a directory) and one changed file for the incremental."""
    raw = bytes(root) + b"/"
    os.unlink(root / "fifo")
    os.unlink(root / "long-link")
    os.unlink(raw + b"bad-link")
    os.unlink(root / _name(101))
    os.unlink(raw + b"bad\xff\xfe dir/" + b"x\xe9" * 60)
    os.rmdir(raw + b"bad\xff\xfe dir")
    with open(root / ("multi" * 30), "r+b") as f:
        f.seek(70000)
        f.write(b"changed" * 100)
    os.utime(root / ("multi" * 30), (MTIME + 60, MTIME + 60))
    os.utime(bytes(root), (MTIME, MTIME))


def backup(tmp, tree, mode, kind):
    target = tmp / f"target-{mode}"
    run_duplicity([kind, "--no-encryption", "--volsize", "1", "--archive-dir", tmp / f"arch-{mode}",
                   "--name", "t", tree, f"file://{target}"], clean_env(mode=mode))
    return target


def tar_stream(target, kind):
    """Member records (headers, PAX records, data, padding) of all ``kind`` volumes, in order."""
    vols = sorted((p for p in target.iterdir() if p.name.startswith(f"duplicity-{kind}.")
                   and ".vol" in p.name),
                  key=lambda p: int(re.search(r"\.vol(\d+)\.", p.name).group(1)))
    assert vols, f"no {kind} volumes in {target}"
    out = bytearray()
    names = []
    for v in vols:
        raw = gzip.decompress(v.read_bytes())
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            members = tf.getmembers()
        for m in members:
            names.append(m.name)
            out += raw[m.offset:m.offset_data + ((m.size + 511) // 512) * 512]
    return bytes(out), names


def sigtar(target, kind):
    (sig,) = target.glob(f"duplicity-{kind}-signatures.*.sigtar.gz")
    return gzip.decompress(sig.read_bytes())


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    """Full then incremental backups of the same tree by stock and by dupcore."""
    tmp = tmp_path_factory.mktemp("tarblocks")
    tree = tmp / "tree"
    skipped = make_tree(tree)
    targets = {m: backup(tmp, tree, m, "full") for m in ("stock", "dupcore")}
    full = {m: (tar_stream(t, "full"), sigtar(t, "full")) for m, t in targets.items()}
    change_tree(tree)
    for m in targets:
        backup(tmp, tree, m, "incremental")
    inc = {m: (tar_stream(t, "inc"), sigtar(t, "new")) for m, t in targets.items()}
    return tmp, tree, targets, full, inc, skipped


def test_dupcore_tar_component_is_active(tmp_path):
    (tmp_path / "src").mkdir()
    res = run_duplicity(["full", "--no-encryption", "-v", "info", tmp_path / "src",
                         f"file://{tmp_path / 't'}"], clean_env(mode="dupcore"))
    banner = res.banner()
    assert banner and "tar [TarBlockIter.tarinfo2tarblock" in banner, banner


def test_full_difftar_identical(chains):
    _, _, _, full, _, skipped = chains
    (stock, names), _ = full["stock"]
    (dup, dnames), _ = full["dupcore"]
    assert names == dnames
    assert stock == dup
    # the odd entries are really there
    assert "snapshot/." in names  # written as snapshot/./, tarfile drops the "/" on reading
    assert any(n.startswith("multivol_snapshot/multi") and n.endswith("/3") for n in names)
    assert "multivol_snapshot/exact64k/2" in names
    assert os.fsdecode(b"snapshot/bad\xff\xfe dir/" + b"x\xe9" * 60) in names
    assert b"hdrcharset=BINARY" in stock and b" linkpath=" in stock
    if "big uid" not in skipped:
        assert b" uid=4000000\n" in stock
    if "far-future mtime" not in skipped:
        assert b" mtime=%d\n" % (8**11 + 5) in stock


def test_full_sigtar_identical(chains):
    _, _, _, full, _, _ = chains
    assert full["stock"][1] == full["dupcore"][1]


def test_incremental_difftar_identical(chains):
    _, _, _, _, inc, _ = chains
    (stock, names), ssig = inc["stock"]
    (dup, dnames), dsig = inc["dupcore"]
    assert names == dnames
    assert stock == dup
    assert ssig == dsig
    assert "deleted/fifo" in names and "deleted/long-link" in names
    assert os.fsdecode(b"deleted/bad\xff\xfe dir") in names
    assert any(n.startswith(("multivol_diff/", "diff/multi")) for n in names)


def test_stock_restores_dupcore_chain(chains):
    tmp, tree, targets, _, _, _ = chains
    out = tmp / "restored"
    run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp / "arch-restore", "--name",
                   "r", f"file://{targets['dupcore']}", out], clean_env(mode="stock"))
    assert_same_tree(snapshot(tree), snapshot(out), "dupcore chain restored by stock")
