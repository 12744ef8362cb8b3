"""Tar blocks for duplicity's difftars from the Rust header writer.

``TarBlockIter.tarinfo2tarblock`` builds every difftar block: ``TarInfo.tobuf()`` (PAX format,
``encoding=config.fsencoding``) + data + NUL padding. :func:`install_diffdir` replaces it with
:func:`dupcore._core.tar_block`, which writes the same bytes in one buffer (docs/formats.md §4.2).

The replacement only runs where its output was verified: CPython 3.9–3.13 with
``tarfile.DEFAULT_FORMAT == PAX_FORMAT`` and a UTF-8 filesystem encoding. At install time a set
of canary entries goes through duplicity's own ``tarinfo2tarblock`` and through dupcore's, and any
difference keeps the component stock. Entries the Rust writer declines (numbers beyond 64 bits,
``pax_headers`` set, values CPython rejects) go to duplicity's original method, so errors stay
those of stock duplicity.
"""
from __future__ import annotations

import codecs
import os
import sys
import tarfile
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dupcore import _core

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

VERIFIED_PYTHONS = ((3, 9), (3, 13))  # CPython minor versions whose tobuf() output was compared

_TarInfo = tarfile.TarInfo
_tar_header = _core.tar_header
_tar_block = _core.tar_block


def tarfile_unsupported() -> str | None:
    """None when this Python's tarfile writes the PAX headers dupcore reproduces, else why not."""
    lo, hi = VERIFIED_PYTHONS
    ver = sys.version_info[:2]
    if sys.implementation.name != "cpython" or not lo <= ver <= hi:
        impl = sys.implementation.name
        return (f"tarfile of {impl} {ver[0]}.{ver[1]} is not verified"
                f" (CPython {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]} are)")
    if tarfile.DEFAULT_FORMAT != tarfile.PAX_FORMAT:
        return "tarfile.DEFAULT_FORMAT is not PAX_FORMAT"
    return None


def header(ti: tarfile.TarInfo) -> bytes | None:
    """``ti.tobuf(format=PAX_FORMAT, encoding="utf-8")`` from the Rust writer, or None if declined."""
    if type(ti) is not _TarInfo or ti.pax_headers:
        return None
    try:
        return _tar_header(
            ti.name.encode("utf-8", "surrogatepass"), ti.type, ti.mode, ti.uid, ti.gid, ti.size,
            ti.mtime, ti.linkname.encode("utf-8", "surrogatepass"),
            ti.uname.encode("utf-8", "surrogatepass"), ti.gname.encode("utf-8", "surrogatepass"),
            ti.devmajor, ti.devminor)
    except Exception:  # noqa: BLE001 - anything unusual is left to tarfile
        return None


def block(ti: tarfile.TarInfo, data: bytes) -> bytes | None:
    """Header (``size = len(data)``) + data + padding from the Rust writer, or None if declined."""
    if type(ti) is not _TarInfo or ti.pax_headers:
        return None
    try:
        return _tar_block(
            ti.name.encode("utf-8", "surrogatepass"), ti.type, ti.mode, ti.uid, ti.gid, ti.mtime,
            ti.linkname.encode("utf-8", "surrogatepass"),
            ti.uname.encode("utf-8", "surrogatepass"), ti.gname.encode("utf-8", "surrogatepass"),
            ti.devmajor, ti.devminor, data)
    except Exception:  # noqa: BLE001 - anything unusual is left to tarfile
        return None


def make_tarinfo2tarblock(original: Callable[..., Any],
                          tar_block_cls: type) -> Callable[..., Any]:
    """A ``TarBlockIter.tarinfo2tarblock`` that uses the Rust writer and falls back to ``original``."""

    def tarinfo2tarblock(self, index, tarinfo, file_data=b""):
        data = block(tarinfo, file_data)
        if data is None:
            return original(self, index, tarinfo, file_data)
        tarinfo.size = len(file_data)
        return tar_block_cls(index, data)

    tarinfo2tarblock.__wrapped__ = original
    tarinfo2tarblock.__doc__ = original.__doc__
    tarinfo2tarblock.__dupcore__ = True
    return tarinfo2tarblock


def canary_tarinfos() -> list[tarfile.TarInfo]:
    """TarInfos covering each entry type and PAX trigger duplicity can produce."""
    def ti(name, type_=tarfile.REGTYPE, **kw):
        t = _TarInfo(name)
        t.type = type_
        t.mode, t.uid, t.gid, t.mtime, t.uname, t.gname = 0o644, 1000, 1000, 1_700_000_000, "u", "g"
        for k, v in kw.items():
            setattr(t, k, v)
        return t

    bad = os.fsdecode(b"snapshot/bad\xff\xfe")
    return [
        ti("snapshot/./", tarfile.DIRTYPE, mode=0o755),
        ti("snapshot/dir", tarfile.DIRTYPE, mode=0o1777),
        ti("snapshot/f.txt"),
        ti("snapshot/" + "n" * 91),
        ti("snapshot/" + "n" * 92),
        ti("snapshot/café ✓"),
        ti(bad),
        ti("snapshot/link", tarfile.SYMTYPE, mode=0o777, linkname="t" * 101),
        ti("snapshot/link2", tarfile.SYMTYPE, linkname=os.fsdecode(b"\xe9t\xe9")),
        ti("snapshot/fifo", tarfile.FIFOTYPE),
        ti("snapshot/chr", tarfile.CHRTYPE, devmajor=4, devminor=64),
        ti("snapshot/blk", tarfile.BLKTYPE, devmajor=259, devminor=2_000_000),
        ti("snapshot/big", uid=4_000_000, gid=2**21, mtime=8**11, uname="x" * 40, gname="ü"),
        ti("snapshot/old", mtime=-1),
        ti("snapshot/float", mtime=1_700_000_000.5),
        _TarInfo("deleted/gone"),
    ]


def verify(original: Callable[..., Any], tar_block_cls: type) -> str | None:
    """None when dupcore's blocks equal ``original``'s for every canary entry, else the first difference."""
    mine = make_tarinfo2tarblock(original, tar_block_cls)
    for data in (b"", b"x" * 700):
        for t in canary_tarinfos():
            if t.type != tarfile.REGTYPE and data:
                continue
            ours = block(t, data)
            theirs = original(None, (), t, data).data
            if ours != theirs or mine(None, (), t, data).data != theirs:
                return f"tar block of {t.name!r} differs from this Python's tarfile"
    return None


def install_diffdir(diffdir: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.diffdir``: put the Rust tar block writer into ``TarBlockIter``."""
    from dupcore.stock import Stock

    why = tarfile_unsupported()
    if why:
        raise Stock(why)
    config = sys.modules.get("duplicity.config")
    enc = getattr(config, "fsencoding", None) or sys.getfilesystemencoding()
    if codecs.lookup(enc).name != "utf-8":
        raise Stock(f"filesystem encoding {enc} is not UTF-8")
    cls = diffdir.TarBlockIter
    original = cls.__dict__.get("tarinfo2tarblock")
    if original is None or getattr(original, "__dupcore__", False):
        raise Stock("diffdir.TarBlockIter.tarinfo2tarblock not found")
    diff = verify(original, diffdir.TarBlock)
    if diff:
        raise Stock(diff)
    cls.tarinfo2tarblock = make_tarinfo2tarblock(original, diffdir.TarBlock)
    return "TarBlockIter.tarinfo2tarblock (PAX headers and blocks in Rust)"
