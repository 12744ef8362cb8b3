"""Tar headers read in Rust: ``tarfile.TarInfo.frombuf`` for restore, verify and signatures.

Every member duplicity reads from a difftar or sigtar starts with ``TarInfo.frombuf``, which
CPython does in Python (``nti``/``nts`` per field, two checksums with ``struct``). dupcore's
:func:`dupcore._core.tar_frombuf` parses the common headers (octal numbers, valid checksum) and
builds the same ``TarInfo``; anything else (end-of-archive blocks, base-256 numbers, bad
checksums, old GNU sparse headers, encodings other than UTF-8) goes to CPython's own
``frombuf``, so its errors stay Python's. At install, canary headers are parsed both ways and
any difference keeps the component stock.
"""

from __future__ import annotations

import codecs
import tarfile
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from dupcore import _core

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

_utf8 = {}


def _is_utf8(encoding):
    known = _utf8.get(encoding)
    if known is None:
        try:
            known = codecs.lookup(encoding).name == "utf-8"
        except (LookupError, TypeError):
            known = False
        if len(_utf8) < 64:
            _utf8[encoding] = known
    return known


def make_frombuf(stock: Callable[..., tarfile.TarInfo]) -> Callable[..., tarfile.TarInfo]:
    """A ``frombuf`` classmethod function using the Rust parser, ``stock`` for the rest."""
    parse = _core.tar_frombuf

    def frombuf(cls, buf, encoding, errors):
        """Construct a TarInfo object from a 512 byte bytes object (dupcore)."""
        # duplicity also hands over "" from empty stand-in files (EmptyHeaderError ends them)
        if type(buf) is bytes and _is_utf8(encoding):
            obj = parse(cls, buf, encoding, errors)
            if obj is not None:
                return obj
        return stock(cls, buf, encoding, errors)

    frombuf.__wrapped__ = stock
    frombuf.__dupcore__ = True
    return frombuf


def _state(t):
    """Everything frombuf sets, for comparing two TarInfos."""
    keys = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname",
            "uname", "gname", "devmajor", "devminor")
    return type(t), tuple(getattr(t, k) for k in keys), getattr(t, "_sparse_structs", None)


def canary_headers() -> list[bytes | bytearray | str]:
    """Header blocks covering each member type and each path through frombuf."""
    out = []
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        for name, type_, extra in (
            ("snapshot/f.txt", tarfile.REGTYPE, {}),
            ("snapshot/dir", tarfile.DIRTYPE, {}),
            ("snapshot/café ✓", tarfile.REGTYPE, {}),
            ("snapshot/link", tarfile.SYMTYPE, {"linkname": "target"}),
            ("snapshot/chr", tarfile.CHRTYPE, {"devmajor": 4, "devminor": 64}),
            ("p" * 120 + "/" + "n" * 90, tarfile.REGTYPE, {}),
            ("deleted/" + "x" * 140, tarfile.REGTYPE, {}),
        ):
            t = tarfile.TarInfo(name)
            t.type, t.mode, t.uid, t.gid, t.mtime, t.size = type_, 0o644, 1000, 100, 1_700_000_000, 5
            for k, v in extra.items():
                setattr(t, k, v)
            try:
                buf = t.tobuf(fmt, "utf-8", "surrogateescape")
            except ValueError:
                continue
            out += [buf[i:i + tarfile.BLOCKSIZE] for i in range(0, len(buf), tarfile.BLOCKSIZE)]
    v7 = bytearray(out[0])
    v7[0:100] = b"olddir/".ljust(100, b"\0")
    v7[156] = 0
    v7[257:265] = bytes(8)
    out.append(_with_checksum(v7))
    out.append(_with_checksum(bytearray(out[0][:124]) + b"\x80" + bytes(11) + out[0][136:]))
    out.append(_with_checksum(bytearray(out[0][:124]) + b" 17 \0\0\0\0\0\0\0\0" + out[0][136:]))
    out.append(bytes(bytearray(out[0][:148]) + b"0000000\0" + out[0][156:]))  # bad checksum
    out.append(_with_checksum(bytearray(out[0][:345]) + b"\xff\xfe/pre".ljust(155, b"\0")
                              + out[0][500:]))
    out.append(bytes(tarfile.BLOCKSIZE))
    out.append(out[0][:100])
    out += [b"", "", bytearray(out[0])]
    return out


def _with_checksum(buf):
    buf = bytearray(buf)
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf)


def verify(stock: Callable[..., tarfile.TarInfo],
           mine: Callable[..., tarfile.TarInfo]) -> str | None:
    """None when ``mine`` builds what ``stock`` builds (or raises what it raises) for every
    canary header, else the first difference."""
    for buf in canary_headers():
        for encoding, errors in (("utf-8", "surrogateescape"), ("utf-8", "strict")):
            results = []
            for f in (stock, mine):
                try:
                    results.append(("ok", _state(f(tarfile.TarInfo, buf, encoding, errors))))
                except Exception as exc:  # noqa: BLE001 -- comparing what each raises
                    results.append(("error", type(exc), str(exc)))
            if results[0] != results[1]:
                return f"TarInfo.frombuf differs from this Python's on {buf[:16]!r}..."
    return None


def install_tarfile(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.dup_tarfile``: the Rust ``TarInfo.frombuf``."""
    from dupcore.stock import Stock
    from dupcore.tarblocks import tarfile_unsupported

    why = tarfile_unsupported()
    if why:
        raise Stock(why)
    cls = tarfile.TarInfo
    current = cls.__dict__.get("frombuf")
    if not isinstance(current, classmethod):
        raise Stock("tarfile.TarInfo.frombuf is not a classmethod")
    stock = current.__func__
    if getattr(stock, "__dupcore__", False):
        return "TarInfo.frombuf (headers parsed in Rust)"
    mine = make_frombuf(stock)
    diff = verify(stock, mine)
    if diff:
        raise Stock(diff)
    cls.frombuf = classmethod(mine)
    return "TarInfo.frombuf (headers parsed in Rust)"
