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
import re
import tarfile

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot
from trees import change_odd_entries, odd_entries_tree

pytestmark = pytest.mark.e2e

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
    skipped = odd_entries_tree(tree)
    targets = {m: backup(tmp, tree, m, "full") for m in ("stock", "dupcore")}
    full = {m: (tar_stream(t, "full"), sigtar(t, "full")) for m, t in targets.items()}
    change_odd_entries(tree)
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
