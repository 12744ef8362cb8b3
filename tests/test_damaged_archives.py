"""Damaged archive files: dupcore is never worse than stock duplicity.

A file a restore does not need (the signature files) may be empty or damaged; stock duplicity
restores anyway, and so must dupcore, with the same exit code and the same tree.
"""

from __future__ import annotations

import os

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A plain full and incremental backup made by dupcore, and the tree at the increment."""
    base = tmp_path_factory.mktemp("damaged")
    src = base / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.txt").write_bytes(b"first state\n" * 1000)
    (src / "b.bin").write_bytes(os.urandom(300_000))
    url = f"file://{base}/archive"
    env = clean_env(None, "dupcore")
    run_duplicity(["full", "--no-encryption", str(src), url], env)
    (src / "d" / "a.txt").write_bytes(b"second state\n" * 1200)
    later = os.stat(src / "d" / "a.txt").st_mtime + 10
    os.utime(src / "d" / "a.txt", (later, later))
    (src / "c.txt").write_bytes(b"new file\n")
    run_duplicity(["incremental", "--no-encryption", str(src), url], env)
    return base / "archive", snapshot(src)


@pytest.mark.parametrize("kind", ["full-signatures", "new-signatures"])
def test_empty_signature_file_does_not_stop_a_restore(kind, chain, tmp_path):
    """An emptied signature file: stock and dupcore both restore the latest state exactly."""
    archive, expected = chain
    damaged = tmp_path / "archive"
    damaged.mkdir()
    emptied = 0
    for f in os.listdir(archive):
        data = (archive / f).read_bytes()
        if f"duplicity-{kind}." in f:
            data = b""
            emptied += 1
        (damaged / f).write_bytes(data)
    assert emptied == 1
    codes = {}
    for mode in ("stock", "dupcore"):
        target = tmp_path / f"restore-{mode}"
        res = run_duplicity(["restore", "--no-encryption", "--archive-dir",
                             str(tmp_path / f"cache-{mode}"), f"file://{damaged}", str(target)],
                            clean_env(None, mode), check=False)
        codes[mode] = res.returncode
        if res.returncode == 0:
            assert_same_tree(expected, snapshot(target), f"{kind} emptied, restored by {mode}")
    assert codes["dupcore"] == codes["stock"] == 0, codes
