"""Random TarInfo entries and the byte-for-byte comparison of dupcore's tar writer with tobuf().

Runnable on its own under any CPython 3.9+ that can import ``dupcore._core`` (the abi3 module):
``python tests/tar_cases.py COUNT SEED`` prints ``N passed, 0 failed`` or the first mismatch.
"""
from __future__ import annotations

import os
import random
import sys
import tarfile

from dupcore import tarblocks

TYPES = [tarfile.REGTYPE] * 6 + [tarfile.DIRTYPE] * 3 + [
    tarfile.SYMTYPE, tarfile.SYMTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
    tarfile.LNKTYPE, tarfile.CONTTYPE, tarfile.AREGTYPE]
EDGE_LENGTHS = [0, 1, 31, 32, 33, 90, 91, 92, 99, 100, 101, 154, 155, 156, 254, 255, 256, 257,
                511, 512, 513, 1000]
UNICODE = "éüßøçñ✓€中文字😀\u0301\u00a0"
ASCII = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789._- ~'\"#%&()+,;=@[]^{}"

I64 = 2**63


def _piece(rng, n):
    """A text of about ``n`` characters mixing ASCII, Unicode, slashes and escaped bytes."""
    style = rng.random()
    out = []
    while len(out) < n:
        r = rng.random()
        if style < 0.4 or r < 0.7:
            out.append(rng.choice(ASCII))
        elif r < 0.8:
            out.append("/")
        elif r < 0.9:
            out.append(rng.choice(UNICODE))
        else:  # undecodable filesystem bytes, as os.fsdecode gives them
            out.extend(os.fsdecode(bytes(rng.randrange(0x80, 0x100)
                                         for _ in range(rng.randrange(1, 4)))))
    return "".join(out[:n])


def _fs_name(rng):
    """A name as ROPath.get_tarinfo() builds it: fsdecode of random bytes (often not UTF-8)."""
    raw = bytes(rng.choice(b"abc/\xc3\xa9\xe2\x9c\x93\xff\xfe\x80\xed\xa0\x80\xf0\x9f\x98\x80")
                for _ in range(rng.choice(EDGE_LENGTHS[:12])))
    return os.fsdecode(raw)


def _text(rng, short=False):
    r = rng.random()
    if r < 0.1:
        return ""
    if r < 0.25:
        return _fs_name(rng)
    if r < 0.6:
        n = rng.choice(EDGE_LENGTHS[:7]) if short else rng.choice(EDGE_LENGTHS)
        return "".join(rng.choice(ASCII) for _ in range(n))
    if short:
        n = rng.choice([0, 1, 8, 31, 32, 33, 40]) if rng.random() < 0.6 else rng.randrange(64)
    else:
        n = rng.choice(EDGE_LENGTHS) if rng.random() < 0.6 else rng.randrange(400)
    s = _piece(rng, n)
    if rng.random() < 0.003:  # a surrogate no filesystem name produces
        s += rng.choice(["\udc41", "\ud800", "\udfff"])
    return s


def _name(rng, type_):
    prefix = rng.choice(["snapshot/", "diff/", "deleted/", "multivol_snapshot/", "signature/", ""])
    name = prefix + _text(rng)
    if rng.random() < 0.05:
        name = rng.choice([".", "./", "snapshot/./", "snapshot/", ""])
    if type_ == tarfile.DIRTYPE and rng.random() < 0.7 and not name.endswith("/"):
        name += "/"
    return name


def _int(rng, bound_digits):
    limit = 8 ** (bound_digits - 1)
    r = rng.random()
    if r < 0.4:
        return rng.randrange(0, 70000)
    if r < 0.6:
        return limit + rng.randrange(-3, 3)
    if r < 0.75:
        return rng.randrange(0, 2**40)
    if r < 0.85:
        return -rng.randrange(1, 2**33)
    if r < 0.9:
        return rng.choice([I64 - 1, -I64, 2**64 + 5, -(2**70)])
    return rng.randrange(0, limit)


def _number(rng, bound_digits):
    if rng.random() < 0.15:
        r = rng.random()
        if r < 0.3:
            return rng.randrange(-10, 10) + rng.choice([0.0, 0.5, 0.25, 0.999999])
        if r < 0.6:
            return float(_int(rng, bound_digits)) + rng.choice([0.0, 0.5, -0.5, 0.1])
        if r < 0.95:
            return rng.choice([-0.0, 1e16, 1e15, 1.5e-7, 1e-4, 1e-5, 1e300, 8.0**11, 8.0**11 - 0.5,
                               2097151.5, 2097152.49, 123456789.125, -1e-300])
        return rng.choice([float("nan"), float("inf"), float("-inf")])
    return _int(rng, bound_digits)


def plain_tarinfo(rng):
    """A TarInfo as most of a backup looks: ASCII names, ids and times in range."""
    ti = tarfile.TarInfo()
    ti.type = rng.choice(TYPES[:11])
    ti.name = rng.choice(["snapshot/", "diff/", "deleted/"]) + "".join(
        rng.choice(ASCII) for _ in range(rng.randrange(0, 95)))
    ti.mode = rng.choice([0o644, 0o755, 0o777, 0o600])
    ti.uid, ti.gid = rng.randrange(0, 70000), rng.randrange(0, 70000)
    ti.size, ti.mtime = rng.randrange(0, 1 << 30), rng.randrange(0, 2_000_000_000)
    ti.uname, ti.gname = rng.choice(["", "root", "user"]), rng.choice(["", "root", "staff"])
    if ti.type == tarfile.SYMTYPE:
        ti.linkname = "".join(rng.choice(ASCII) for _ in range(rng.randrange(1, 100)))
    if ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = rng.randrange(0, 512), rng.randrange(0, 2**20)
    return ti


def random_tarinfo(rng):
    """A TarInfo with fields in the ranges (and beyond) that duplicity could set."""
    if rng.random() < 0.3:
        return plain_tarinfo(rng)
    ti = tarfile.TarInfo()
    ti.type = rng.choice(TYPES)
    ti.name = _name(rng, ti.type)
    ti.mode = rng.choice([0, 0o644, 0o755, 0o777, 0o1777, 0o4755]) if rng.random() < 0.6 \
        else rng.randrange(-0o7777, 0o177777)
    ti.uid = _number(rng, 8) if rng.random() < 0.5 else rng.randrange(0, 70000)
    ti.gid = _number(rng, 8) if rng.random() < 0.5 else rng.randrange(0, 70000)
    ti.size = _number(rng, 12) if rng.random() < 0.3 else rng.randrange(0, 1 << 20)
    ti.mtime = _number(rng, 12) if rng.random() < 0.5 else rng.randrange(0, 2_000_000_000)
    if ti.type == tarfile.SYMTYPE or rng.random() < 0.1:
        ti.linkname = _text(rng)
    ti.uname = _text(rng, short=True)
    ti.gname = _text(rng, short=True)
    if ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE) or rng.random() < 0.1:
        ti.devmajor = _number(rng, 8) if rng.random() < 0.3 else rng.randrange(0, 512)
        ti.devminor = _number(rng, 8) if rng.random() < 0.3 else rng.randrange(0, 2**20)
    return ti


def _declinable(ti):
    """Entries the Rust writer may hand back to tarfile: ints that do not fit in 64 bits."""
    nums = [ti.uid, ti.gid, ti.size, ti.mtime, ti.mode, ti.devmajor, ti.devminor]
    return any(isinstance(v, int) and not -I64 <= v < I64 for v in nums)


def describe(ti):
    """The fields of a TarInfo, for a failure message."""
    return {k: getattr(ti, k) for k in ("name", "type", "mode", "uid", "gid", "size", "mtime",
                                        "linkname", "uname", "gname", "devmajor", "devminor")}


def check(ti, data=None):
    """None if dupcore's header (or block, with ``data``) equals CPython's, else a message."""
    try:
        want = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "replace")
        stock_error = None
    except Exception as exc:  # noqa: BLE001 - stock rejects it: dupcore must decline
        want, stock_error = None, exc
    if data is None:
        got = tarblocks.header(ti)
    else:
        if want is not None:
            want += data + b"\0" * (-len(data) % 512)
        got = tarblocks.block(ti, data)
    if got == want:
        return None
    if got is None and (stock_error is not None or _declinable(ti)):
        return None
    return "dupcore {} but tobuf {}: {!r}".format(
        "declined" if got is None else f"wrote {got[:1600]!r}",
        f"raised {stock_error!r}" if stock_error else f"wrote {want[:1600]!r}", describe(ti))


FEATURES = (b"hdrcharset=BINARY", b" path=", b" linkpath=", b" uname=", b" gname=", b" uid=",
            b" gid=", b" size=", b" mtime=")


def run(count, seed, block_every=10):
    """Compare ``count`` random entries; every ``block_every``-th also as a whole block.

    Returns ``(failures, seen)``: mismatch messages and how often each PAX record kind,
    each type flag, a stock error and a declined entry occurred.
    """
    rng = random.Random(seed)
    failures = []
    seen = dict.fromkeys([f.decode().strip(" =") for f in FEATURES], 0)
    for i in range(count):
        ti = random_tarinfo(rng)
        data = None
        if i % block_every == 0:
            data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, rng.randrange(70000)]))
            ti.size = len(data)
        msg = check(ti, data)
        if msg:
            failures.append(msg)
            if len(failures) >= 5:
                break
            continue
        got = tarblocks.header(ti)
        key = "type " + ti.type.decode("latin-1")
        seen[key] = seen.get(key, 0) + 1
        if got is None:
            seen["declined"] = seen.get("declined", 0) + 1
            continue
        if got[156:157] == b"x":
            seen["pax"] = seen.get("pax", 0) + 1
            size = int(got[124:135], 8)
            records = got[512:512 + size]
            for f in FEATURES:
                if f in records:
                    seen[f.decode().strip(" =")] += 1
    return failures, seen


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    fails, seen = run(n, seed)
    for f in fails:
        print(f)
    print(seen)
    print(f"{n - len(fails)} passed, {len(fails)} failed")
    sys.exit(1 if fails else 0)
