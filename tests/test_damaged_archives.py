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


def _copy_with(archive, dest, change):
    """A copy of the archive with the incremental's manifest changed."""
    dest.mkdir()
    changed = 0
    for f in os.listdir(archive):
        data = (archive / f).read_bytes()
        if f.startswith("duplicity-inc.") and f.endswith(".manifest"):
            data = change(data)
            changed += 1
        (dest / f).write_bytes(data)
    assert changed == 1


def _restore(mode, archive, tmp_path):
    target = tmp_path / f"restore-{mode}"
    res = run_duplicity(["restore", "--no-encryption", "--archive-dir",
                         str(tmp_path / f"cache-{mode}"), f"file://{archive}", str(target)],
                        clean_env(None, mode), check=False)
    return res, target


def test_empty_incremental_manifest_is_an_error_not_an_older_state(chain, tmp_path):
    """An emptied incremental manifest: stock restores the full backup's state and exits 0
    (silently another point in time); dupcore stops with duplicity's mismatched-manifests exit
    code and a line naming the manifest."""
    archive, expected = chain
    damaged = tmp_path / "archive"
    _copy_with(archive, damaged, lambda d: b"")
    stock, stock_target = _restore("stock", damaged, tmp_path)
    assert stock.returncode == 0
    assert snapshot(stock_target) != expected  # the older state, reported as success
    res, _target = _restore("dupcore", damaged, tmp_path)
    assert res.returncode == 5, res.text()
    assert b"the manifest is damaged" in res.output and b".manifest lists 0 volume(s)" in res.output


def test_manifest_without_hash_restores_with_a_warning(chain, tmp_path):
    """A manifest whose hash line is gone: stock stops with an UnboundLocalError traceback;
    dupcore restores exactly and warns that the volume is not checked."""
    archive, expected = chain
    damaged = tmp_path / "archive"
    _copy_with(archive, damaged,
               lambda d: b"\n".join(x for x in d.split(b"\n") if b"Hash SHA1" not in x))
    stock, _target = _restore("stock", damaged, tmp_path)
    assert stock.returncode != 0 and b"UnboundLocalError" in stock.output
    res, target = _restore("dupcore", damaged, tmp_path)
    assert res.returncode == 0, res.text()
    assert b"has no hash for volume 1" in res.output
    assert_same_tree(expected, snapshot(target), "manifest without hash, restored by dupcore")


def _garble_hash_name(data):
    """A byte flipped inside the first ``Hash SHA1`` line: duplicity's manifest parser fails
    decoding it (``UnicodeDecodeError``)."""
    at = data.index(b"SHA1") + 1
    return data[:at] + bytes([data[at] ^ 0xED]) + data[at + 1:]


def test_unreadable_manifest_is_one_line_not_a_traceback(chain, tmp_path):
    """A manifest duplicity's parser cannot read: stock ends in a traceback (exit 30); dupcore
    stops with duplicity's unreadable-manifest exit code and one line naming the file."""
    archive, _expected = chain
    damaged = tmp_path / "archive"
    _copy_with(archive, damaged, _garble_hash_name)
    stock, _target = _restore("stock", damaged, tmp_path)
    assert stock.returncode == 30 and b"Traceback" in stock.output, stock.text()
    res, target = _restore("dupcore", damaged, tmp_path)
    assert res.returncode == 6, res.text()
    assert b"Traceback" not in res.output, res.text()
    lines = [x for x in res.output.splitlines() if b"is damaged and cannot be read" in x]
    assert len(lines) == 1 and b"duplicity-inc." in lines[0] and b"UnicodeDecodeError" in lines[0]
    assert not target.exists() or not os.listdir(target)


@pytest.mark.parametrize("operation,garbled", [("restore-stock-path", False), ("verify", False),
                                               ("verify", True)])
def test_damaged_manifest_on_other_operations(operation, garbled, chain, tmp_path):
    """The same guards hold where the restore engine does not run: a restore that stays on
    duplicity's own code (``DUPCORE_DISABLE=restore``) and verify stop on an emptied incremental
    manifest (exit 5); an unreadable manifest stops verify with one line (exit 6)."""
    archive, _expected = chain
    damaged = tmp_path / "archive"
    _copy_with(archive, damaged, _garble_hash_name if garbled else (lambda d: b""))
    common = ["--no-encryption", "--archive-dir", str(tmp_path / "cache"), f"file://{damaged}"]
    env = clean_env(None, "dupcore")
    if operation == "restore-stock-path":
        env["DUPCORE_DISABLE"] = "restore"
        args = ["restore", *common, str(tmp_path / "out")]
    else:
        args = ["verify", *common, str(tmp_path / "out")]
    res = run_duplicity(args, env, check=False)
    assert res.returncode == (6 if garbled else 5), res.text()
    assert b"Traceback" not in res.output, res.text()
    assert b"Manifest duplicity-inc." in res.output, res.text()
