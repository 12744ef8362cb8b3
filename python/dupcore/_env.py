"""Every environment variable dupcore reads, in one place.

Imported at interpreter start by :mod:`dupcore._startup`, so it uses nothing but :mod:`os`.

* ``DUPCORE=0`` (or ``off``/``false``/``no``/``disable(d)``): dupcore stays out entirely;
* ``DUPCORE_DISABLE=name,...`` (or ``all``): the named components stay stock;
* ``DUPCORE_LIBRSYNC=2.3.4|2.3.2``: the librsync release whose delta bytes to write (default:
  what the running duplicity's own librsync writes);
* ``DUPCORE_RESTORE_AHEAD=N``: volumes a restore fetches, checks and opens ahead of the one
  being read (default: the core count, at least 2; 0 fetches each volume when it is needed,
  keeping every log line in stock's order);
* ``DUPCORE_RESTORE_WRITERS=N``: threads writing small files during a restore (default: the
  core count, 2 to 8; 0 writes every file on the engine's thread);
* ``DUPCORE_RESTORE_SPILL_MIB=N``: MiB of decoded volume data a restore may keep in spool files
  in duplicity's temporary directory, so that the volumes fetched ahead are decoded in parallel
  with the one being read (default: 2048, at most a quarter of the free space and an eighth of
  the RAM, when that directory is a tmpfs, else 0; 0: decode ahead in memory only, a few MiB
  per volume);
* ``DUPCORE_RESTORE_SPOOL_MEMORY_MIB=N``: MiB of a file's snapshot a restore keeps in memory
  while it applies the file's deltas (default 16); a larger one goes to a spool file, made on
  the restored file's own file system when it can become that file;
* ``DUPCORE_RESTORE_DIRECT=0``: a restore writes every file through the page cache; by default
  files larger than a MiB (and snapshots spooled next to their restored file) on a local disk
  file system (ext4, XFS, btrfs, F2FS) are written with direct I/O, bypassing the cache;
* ``DUPCORE_COMPRESS=default|fast|small``: the deflate engine and level of gzip volumes and
  OpenPGP compressed packets (default zlib-rs 6, archives the size of stock's; ``fast`` ISA-L 3;
  ``small`` zlib-rs 7). gpg's ``--compress-level``/``-z`` in ``--gpg-options`` still wins.
"""
from __future__ import annotations

import os

#: The variables above, for ``python -m dupcore status``.
VARIABLES = ("DUPCORE", "DUPCORE_DISABLE", "DUPCORE_LIBRSYNC", "DUPCORE_RESTORE_AHEAD",
             "DUPCORE_RESTORE_WRITERS", "DUPCORE_RESTORE_SPILL_MIB",
             "DUPCORE_RESTORE_SPOOL_MEMORY_MIB", "DUPCORE_RESTORE_DIRECT", "DUPCORE_COMPRESS")
_OFF_VALUES = ("0", "off", "false", "no", "disable", "disabled")


def disabled() -> bool:
    """True when the environment switches dupcore off entirely (``DUPCORE=0``)."""
    return os.environ.get("DUPCORE", "1").strip().lower() in _OFF_VALUES


def disabled_components() -> set[str]:
    """Names listed in ``DUPCORE_DISABLE`` (lower-case; ``all`` means every component)."""
    raw = os.environ.get("DUPCORE_DISABLE", "")
    return {p.strip().lower() for p in raw.replace(";", ",").replace(" ", ",").split(",")
            if p.strip()}


def librsync_mode() -> str | None:
    """The librsync format forced by ``DUPCORE_LIBRSYNC``, or None to follow duplicity's."""
    return os.environ.get("DUPCORE_LIBRSYNC") or None


def restore_ahead() -> int:
    """Volumes fetched ahead during a restore (``DUPCORE_RESTORE_AHEAD``)."""
    raw = os.environ.get("DUPCORE_RESTORE_AHEAD", "").strip()
    if raw.isdigit():
        return int(raw)
    return max(2, os.cpu_count() or 2)


def restore_writers() -> int:
    """Threads writing small files during a restore (``DUPCORE_RESTORE_WRITERS``; 0: none)."""
    raw = os.environ.get("DUPCORE_RESTORE_WRITERS", "").strip()
    if raw.isdigit():
        return min(int(raw), 64)
    return max(2, min(8, os.cpu_count() or 2))


def restore_spool_memory_mib() -> int:
    """MiB of a file's snapshot kept in memory while its deltas are applied during a restore
    (``DUPCORE_RESTORE_SPOOL_MEMORY_MIB``; default 16); a larger snapshot is spooled to disk,
    next to the restored file when its file system allows."""
    raw = os.environ.get("DUPCORE_RESTORE_SPOOL_MEMORY_MIB", "").strip()
    if raw.isdigit():
        return min(int(raw), 4096)
    return 16


def restore_direct() -> bool:
    """Whether a restore writes large files with direct I/O (``DUPCORE_RESTORE_DIRECT``,
    default on)."""
    return os.environ.get("DUPCORE_RESTORE_DIRECT", "1").strip().lower() not in _OFF_VALUES


def restore_spill_mib(free_mib: int, ram_mib: int, memory_backed: bool) -> int:
    """MiB a restore may spill (``DUPCORE_RESTORE_SPILL_MIB``). By default 2048, at most a
    quarter of ``free_mib``, the free space of the temporary directory, and an eighth of the
    RAM, when that directory is memory-backed (tmpfs); else 0: on a disk file system the
    spool's writes cost more kernel time than decoding ahead in parallel saves."""
    raw = os.environ.get("DUPCORE_RESTORE_SPILL_MIB", "").strip()
    if raw.isdigit():
        return int(raw)
    if not memory_backed:
        return 0
    return min(2048, free_mib // 4, ram_mib // 8)


def compress_profile() -> str:
    """The ``DUPCORE_COMPRESS`` profile name, lower-case (``default`` when unset)."""
    return os.environ.get("DUPCORE_COMPRESS", "").strip().lower() or "default"


def settings() -> dict[str, str]:
    """The variables above that are set, with their values."""
    return {k: os.environ[k] for k in VARIABLES if k in os.environ}
