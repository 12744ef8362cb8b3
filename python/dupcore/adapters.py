"""Version adapters: what dupcore knows about each duplicity release line it supports.

A component asks the adapter of the running duplicity which API shape to patch (docs/formats.md §8).
Versions outside these lines are not recognised, and dupcore leaves such a duplicity stock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Adapter:
    """Facts about one duplicity release line that dupcore's components depend on."""

    line: str  # "3.2.x", "3.0.x", "2.2.x", "2.1.x", "0.8.22"
    version: str  # the running duplicity's __version__
    best_effort: bool  # True where coverage is thinner (Debian's 0.8.22)
    librsync_format: str  # librsync whose bytes stock duplicity of this line writes
    has_sigfile: bool  # librsync.SigFile, diffdir.DirSig/DirDelta/SigTarBlockIter (<= 3.0.x)
    needs_get_version: bool  # duplicity.librsync calls _librsync.get_version() at import
    block_size_rule: str  # "isqrt" (3.2.x) or "legacy" (512 / len/(2000*512)*512 capped 2048)
    gzip_volume_footer: bool  # GzipWriteFile/PlainWriteFile write the tar footer, target size-50K

    @property
    def label(self) -> str:
        """Human form, e.g. ``3.2.x (3.2.1)``."""
        return f"{self.line} ({self.version})"


# (major, minor) -> line data. 0.8 is keyed on the exact version below.
_LINES = {
    (3, 2): {"line": "3.2.x", "best_effort": False, "librsync_format": "2.3.4", "has_sigfile": False,
                 "needs_get_version": True, "block_size_rule": "isqrt", "gzip_volume_footer": True},
    (3, 0): {"line": "3.0.x", "best_effort": False, "librsync_format": "2.3.4", "has_sigfile": True,
                 "needs_get_version": False, "block_size_rule": "legacy", "gzip_volume_footer": False},
    (2, 2): {"line": "2.2.x", "best_effort": False, "librsync_format": "2.3.4", "has_sigfile": True,
                 "needs_get_version": False, "block_size_rule": "legacy", "gzip_volume_footer": False},
    (2, 1): {"line": "2.1.x", "best_effort": False, "librsync_format": "2.3.4", "has_sigfile": True,
                 "needs_get_version": False, "block_size_rule": "legacy", "gzip_volume_footer": False},
}
# Debian bookworm's package links the system librsync (2.3.2).
_EXACT = {
    (0, 8, 22): {"line": "0.8.22", "best_effort": True, "librsync_format": "2.3.2", "has_sigfile": True,
                     "needs_get_version": False, "block_size_rule": "legacy",
                     "gzip_volume_footer": False},
}

SUPPORTED = tuple(d["line"] for d in _LINES.values()) + tuple(d["line"] for d in _EXACT.values())


def parse_version(version: object) -> tuple[int, int, int] | None:
    """``"3.2.1"`` -> ``(3, 2, 1)``; tolerates suffixes such as ``rc1`` or ``.dev0``; else None."""
    m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(version or ""))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def adapter_for(version: object) -> tuple[Adapter | None, str]:
    """The adapter for a duplicity version, or ``(None, reason)`` when it is not recognised."""
    parsed = parse_version(version)
    if parsed is None:
        return None, f"duplicity version {version!r} could not be parsed"
    data = _EXACT.get(parsed) or _LINES.get(parsed[:2])
    if data is None:
        return None, "duplicity {} is not a recognised release (dupcore supports {})".format(
            version, ", ".join(SUPPORTED))
    return Adapter(version=str(version), **data), "duplicity {} matches the {} adapter".format(
        version, data["line"])
