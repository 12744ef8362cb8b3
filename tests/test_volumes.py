"""Volume cross-tests: dupcore's gzip/plain volumes against stock duplicity 3.2.1.

The tar stream inside the volumes (all volumes decompressed, footers stripped) must be
byte-identical to stock's for the same tree, signature tars identical after decompression,
archives must cross-restore both ways, and the compressed size must stay within 2 % of stock.
"""

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tarfile

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot
from trees import volume_tree

pytestmark = pytest.mark.e2e

def backup(tmp, tree, mode, *extra):
    """A full backup of ``tree`` by stock or dupcore; returns the target directory."""
    target = tmp / f"target-{mode}"
    args = ["full", "--no-encryption", "--volsize", "1", "--archive-dir", tmp / f"arch-{mode}",
            "--name", "v", *extra, tree, f"file://{target}"]
    run_duplicity(args, clean_env(mode=mode))
    return target


def volumes(target):
    """Volume files of the full backup in volume order."""
    vols = [p for p in target.iterdir() if ".vol" in p.name and p.name.startswith("duplicity-full.")]
    return sorted(vols, key=lambda p: int(re.search(r"\.vol(\d+)\.", p.name).group(1)))


def open_volume(path):
    """The volume's tar bytes."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def tar_stream(vols):
    """Concatenated raw member records (headers, PAX records, data, padding) of all volumes."""
    out = bytearray()
    for v in vols:
        raw = open_volume(v)
        with tarfile.open(fileobj=__import__("io").BytesIO(raw), mode="r:") as tf:
            members = tf.getmembers()
        for m in members:
            end = m.offset_data + ((m.size + 511) // 512) * 512
            out += raw[m.offset:end]
    return bytes(out)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Full backups of the same tree, gzip volumes, by stock and by dupcore."""
    tmp = tmp_path_factory.mktemp("volumes")
    tree = tmp / "tree"
    volume_tree(tree)
    return tmp, tree, backup(tmp, tree, "stock"), backup(tmp, tree, "dupcore")


def test_gzip_tar_stream_is_identical(pair):
    _tmp, _tree, stock, dup = pair
    sv, dv = volumes(stock), volumes(dup)
    assert len(sv) >= 3 and len(dv) >= 3, "the tree must span several 1 MiB volumes"
    assert tar_stream(sv) == tar_stream(dv)


def test_every_dupcore_volume_is_valid_gzip(pair):
    _, _, _, dup = pair
    for v in volumes(dup):
        subprocess.run(["gzip", "-t", str(v)], check=True)
        raw = gzip.decompress(v.read_bytes())
        assert len(raw) % 512 == 0
        assert raw.endswith(b"\0" * 512), "3.2.x volumes end with the tar footer"


def test_signature_tar_identical_and_manifest_hashes(pair):
    _, _, stock, dup = pair
    (ssig,) = stock.glob("duplicity-full-signatures.*.sigtar.gz")
    (dsig,) = dup.glob("duplicity-full-signatures.*.sigtar.gz")
    assert gzip.decompress(ssig.read_bytes()) == gzip.decompress(dsig.read_bytes())
    (man,) = dup.glob("duplicity-full.*.manifest")
    text = man.read_text("utf-8", "replace")
    hashes = re.findall(r"Hash SHA1 ([0-9a-f]{40})", text)
    vols = volumes(dup)
    assert hashes == [hashlib.sha1(v.read_bytes()).hexdigest() for v in vols]
    smanifest = next(stock.glob("duplicity-full.*.manifest")).read_text("utf-8", "replace")
    strip = lambda t: re.sub(r"(?ms)^Volume \d+:.*?(?=^Volume |^Filelist|\Z)", "", t)
    without_host = lambda t: re.sub(r"(?m)^(Hostname|Localdir) .*$", "", t)
    assert without_host(strip(text)) == without_host(strip(smanifest))


def test_volume_size_rule_of_3_2(pair):
    """3.2.x rule: stop 50 KiB before --volsize; the pipeline must never push a volume past it."""
    _, _, stock, dup = pair
    limit = 1024 * 1024
    for vols in (volumes(stock), volumes(dup)):
        for v in vols[:-1]:
            assert 0.85 * (limit - 50 * 1024) < v.stat().st_size <= limit, (v.name, v.stat().st_size)


def test_compressed_size_close_to_stock(pair):
    _, _, stock, dup = pair
    s = sum(v.stat().st_size for v in volumes(stock))
    d = sum(v.stat().st_size for v in volumes(dup))
    assert abs(d - s) / s < 0.02, (s, d)


@pytest.mark.parametrize("maker,restorer", [("dupcore", "stock"), ("stock", "dupcore")])
def test_cross_restore(pair, maker, restorer):
    tmp, tree, stock, dup = pair
    target = dup if maker == "dupcore" else stock
    out = tmp / f"restore-{maker}-by-{restorer}"
    run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp / f"arch-x-{restorer}-{maker}",
                   "--name", "v", f"file://{target}", out], clean_env(mode=restorer))
    assert_same_tree(snapshot(tree), snapshot(out), f"{maker} archive restored by {restorer}")
    shutil.rmtree(out)


def test_plain_volumes_identical_and_restorable(tmp_path):
    tree = tmp_path / "tree"
    volume_tree(tree)
    stock = backup(tmp_path, tree, "stock", "--no-compression")
    dup = backup(tmp_path, tree, "dupcore", "--no-compression")
    assert not any(v.name.endswith(".gz") for v in volumes(dup))
    assert tar_stream(volumes(stock)) == tar_stream(volumes(dup))
    out = tmp_path / "restored"
    run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp_path / "arch-r", "--name", "v",
                   f"file://{dup}", out], clean_env(mode="stock"))
    assert_same_tree(snapshot(tree), snapshot(out), "plain dupcore archive restored by stock")


def test_corrupt_volume_is_refused_by_hash(pair, tmp_path):
    _, _tree, _, dup = pair
    target = tmp_path / "target"
    shutil.copytree(dup, target)
    vol = volumes(target)[1]
    data = bytearray(vol.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    vol.write_bytes(bytes(data))
    res = run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp_path / "arch", "--name", "v",
                         f"file://{target}", tmp_path / "out"], clean_env(mode="dupcore"), check=False)
    assert res.returncode != 0
    assert b"hash mismatch" in res.output, res.text()[-2000:]


def _gzip_errors(read):
    """Exception type and message from reading a file to its end with ``read``."""
    try:
        while read(65536):
            pass
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc)
    return None


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "crc"])
def test_gzip_reader_raises_what_python_gzip_raises(pair, tmp_path, damage):
    from dupcore.volumes import GzipReadFile

    _, _, _, dup = pair
    data = bytearray(volumes(dup)[0].read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3: len(data) // 3 + 200] = bytes(200)
    elif damage == "garbage":
        data = bytearray(b"not a gzip file at all" * 100)
    else:
        data[-8] ^= 0xFF
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(data))
    with gzip.open(bad, "rb") as g:
        expected = _gzip_errors(g.read)
    ours = GzipReadFile(os.fsencode(bad))
    try:
        got = _gzip_errors(ours.read)
    finally:
        ours.close()
    assert expected is not None
    assert got is not None and (issubclass(got, expected) or issubclass(expected, got)), (expected, got)


def test_gzip_reader_reads_stock_volumes_and_seeks(pair):
    from dupcore.volumes import GzipReadFile

    _, _, stock, _ = pair
    for v in volumes(stock):
        raw = gzip.decompress(v.read_bytes())
        f = GzipReadFile(os.fsencode(v))
        assert f.read(1000) == raw[:1000]
        f.seek(5000)
        assert f.read(700) == raw[5000:5700]
        f.seek(10)
        assert f.tell() == 10 and f.read() == raw[10:]
        f.close()


def test_rules_of_3_0_line(tmp_path):
    """Under duplicity 3.0.7: same tar stream as stock, volumes filled up to --volsize, no footer."""
    from test_e2e_versions import pypi_venv

    venv = pypi_venv("3.0.7")
    cli = venv / "bin" / "duplicity"
    tree = tmp_path / "tree"
    volume_tree(tree)
    targets = {}
    for mode in ("stock", "dupcore"):
        targets[mode] = tmp_path / f"target-{mode}"
        res = run_duplicity(["full", "--no-encryption", "--volsize", "1", "--archive-dir",
                             tmp_path / f"arch-{mode}", "--name", "v", "-v", "info", tree,
                             f"file://{targets[mode]}"], clean_env(mode=mode), duplicity=cli)
        assert (b"3.0.x" in res.output) == (mode == "dupcore"), res.text()[-3000:]
    sv, dv = volumes(targets["stock"]), volumes(targets["dupcore"])
    assert tar_stream(sv) == tar_stream(dv)
    limit = 1024 * 1024
    for v in dv:
        raw = open_volume(v)
        with tarfile.open(fileobj=__import__("io").BytesIO(raw), mode="r:") as tf:
            last = tf.getmembers()[-1]
        assert len(raw) == last.offset_data + ((last.size + 511) // 512) * 512, "3.0.x writes no footer"
    for v in dv[:-1]:
        assert limit - 80 * 1024 < v.stat().st_size <= limit + 80 * 1024, (v.name, v.stat().st_size)
    out = tmp_path / "restored"
    run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp_path / "arch-r", "--name", "v",
                   f"file://{targets['dupcore']}", out], clean_env(mode="stock"), duplicity=cli)
    assert_same_tree(snapshot(tree), snapshot(out), "3.0.7 dupcore archive restored by stock 3.0.7")
