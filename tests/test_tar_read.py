"""Tar headers read in Rust (``TarInfo.frombuf``) against CPython's own parser.

Random members in PAX, GNU and ustar format, and random damage to their header blocks, must give
the same TarInfo, or the same exception, through dupcore and through this Python's tarfile; a
duplicity restore runs with the component active and restores the tree exactly.
"""

from __future__ import annotations

import os
import random
import tarfile

import pytest
from dupcore import tarheaders
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot

STOCK = tarfile.TarInfo.__dict__["frombuf"].__func__
STOCK = getattr(STOCK, "__wrapped__", STOCK)
MINE = tarheaders.make_frombuf(STOCK)


def outcome(f, buf, encoding="utf-8", errors="surrogateescape"):
    """What ``f`` builds from ``buf``, or the exception it raises."""
    try:
        return ("ok", tarheaders._state(f(tarfile.TarInfo, buf, encoding, errors)))
    except Exception as exc:  # noqa: BLE001 -- the exception is the result being compared
        return ("error", type(exc), str(exc))


def random_member(rnd):
    """A TarInfo as duplicity's difftars and sigtars hold them, plus odd values."""
    parts = ["snapshot", "diff", "deleted", "signature", "multivol_snapshot"]
    alphabet = "abcXYZ019 -_.é✓中" + "\udcff\udce9"
    name = rnd.choice(parts) + "/" + "/".join(
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40)))
        for _ in range(rnd.randint(1, 6)))
    t = tarfile.TarInfo(name)
    t.type = rnd.choice([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
    t.mode = rnd.choice([0o644, 0o755, 0o4755, 0o1777, 0])
    t.uid = rnd.choice([0, 1000, 65534, 2**21 - 1, 2**21, 4_000_000])
    t.gid = rnd.choice([0, 100, 2**21 + 5])
    t.mtime = rnd.choice([0, 1_700_000_000, 8**11 - 1, 8**11, 1_700_000_000.25])
    t.size = rnd.choice([0, 1, 511, 512, 8**11 - 1, 8**11]) if t.type == tarfile.REGTYPE else 0
    if t.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        t.linkname = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 120)))
    if t.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        t.devmajor, t.devminor = rnd.randint(0, 300), rnd.choice([0, 64, 2**21 + 1])
    t.uname = rnd.choice(["", "user", "ü" * 20])
    t.gname = rnd.choice(["", "group"])
    return t


def blocks(rnd, n):
    """Header blocks of ``n`` random members in random formats (PAX/GNU extension blocks too)."""
    out = []
    for _ in range(n):
        t = random_member(rnd)
        fmt = rnd.choice([tarfile.PAX_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT,
                          tarfile.USTAR_FORMAT])
        try:
            buf = t.tobuf(fmt, "utf-8", "surrogateescape")
        except ValueError:
            continue
        out += [buf[i:i + tarfile.BLOCKSIZE] for i in range(0, len(buf), tarfile.BLOCKSIZE)]
    return out


def test_random_headers_parse_like_cpython():
    """20,000+ header blocks of random members: identical TarInfo state."""
    rnd = random.Random(2026)
    bufs = blocks(rnd, 12_000)
    assert len(bufs) > 20_000
    fast = 0
    for buf in bufs:
        want = outcome(STOCK, buf)
        assert outcome(MINE, buf) == want, buf
        fast += want[0] == "ok"
    assert fast > 15_000


def test_damaged_headers_fail_like_cpython():
    """Random byte damage (numbers, checksum, NULs, high bytes) and short blocks: the same
    TarInfo or the same exception, with strict and surrogateescape decoding."""
    rnd = random.Random(7)
    bufs = blocks(rnd, 3000)
    for buf in bufs:
        b = bytearray(buf)
        for _ in range(rnd.randint(1, 4)):
            i = rnd.choice([rnd.randrange(512), rnd.randrange(100, 157), rnd.randrange(329, 345)])
            b[i] = rnd.choice([0, 0x20, 0x2b, 0x5f, 0x37, 0x38, 0x80, 0xff, rnd.randrange(256)])
        if rnd.random() < 0.5:  # keep the checksum right so the numbers themselves are parsed
            b = bytearray(tarheaders._with_checksum(b))
        for errors in ("surrogateescape", "strict"):
            assert outcome(MINE, bytes(b), errors=errors) == outcome(STOCK, bytes(b), errors=errors)
    for buf in (b"", "", b"\0" * 512, bufs[0][:300], bytearray(bufs[0]), memoryview(bufs[0])):
        assert outcome(MINE, buf) == outcome(STOCK, buf)


def test_verify_notices_a_wrong_parser():
    """The install-time check fails a parser that differs from CPython's."""
    def wrong(cls, buf, encoding, errors):
        t = MINE(cls, buf, encoding, errors)
        t.mode ^= 1
        return t

    assert tarheaders.verify(STOCK, MINE) is None
    assert "differs" in tarheaders.verify(STOCK, wrong)


@pytest.mark.e2e
def test_restore_with_rust_headers(tmp_path):
    """A duplicity backup and restore with the component active restores the tree exactly."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f.txt").write_bytes(b"hello\n" * 1000)
    (src / ("n" * 150)).write_bytes(b"long name")
    os.symlink("d/f.txt", src / "link")
    url = f"file://{tmp_path / 'target'}"
    env = clean_env(None)
    common = ["--no-encryption", "--name", "t", "--archive-dir", str(tmp_path / "cache")]
    run_duplicity(["full", *common, str(src), url], env)
    out = tmp_path / "out"
    res = run_duplicity(["restore", "-v", "info", *common, url, str(out)], env)
    assert "tar-read [" in (res.banner() or ""), res.banner()
    assert_same_tree(snapshot(src), snapshot(out), "restore with Rust tar headers")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
