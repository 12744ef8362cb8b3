"""One description of a directory tree, for comparing a restore with its source.

Used by ``python -m dupcore selftest|demo|bench`` and by the project's tests.
"""
from __future__ import annotations

import hashlib
import os
import stat


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry(path: bytes | str, rel: bytes = b".") -> dict[str, int | str]:
    """Describe one filesystem object like the legacy fixtures' expected JSON does."""
    st = os.lstat(path)
    e = {"path_hex": rel.hex(), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid}
    if stat.S_ISLNK(st.st_mode):
        e.update(type="sym", target_hex=os.readlink(path).hex())
    elif stat.S_ISDIR(st.st_mode):
        e.update(type="dir", mtime=int(st.st_mtime))
    elif stat.S_ISREG(st.st_mode):
        e.update(type="reg", mtime=int(st.st_mtime), size=st.st_size, sha256=_sha256(path))
    elif stat.S_ISFIFO(st.st_mode):
        e.update(type="fifo", mtime=int(st.st_mtime))
    else:
        e.update(type="other", mtime=int(st.st_mtime))
    return e


def snapshot(root: bytes | str) -> dict[bytes, dict[str, int | str]]:
    """Map of relative path (bytes) -> entry for every object under root, root itself as b'.'."""
    root = os.fsencode(root)
    out = {b".": entry(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            out[rel] = entry(full, rel)
    return out


def diff_trees(expected: dict[bytes, dict[str, int | str]],
               actual: dict[bytes, dict[str, int | str]],
               limit: int = 20) -> list[str]:
    """Human-readable differences between two snapshots (empty list when equal)."""
    problems = []
    for p in sorted(set(expected) | set(actual)):
        e, a = expected.get(p), actual.get(p)
        if e != a:
            problems.append(f"{p!r}: expected {e}, got {a}")
        if len(problems) >= limit:
            problems.append("...")
            break
    return problems


def same_tree(expected: dict[bytes, dict[str, int | str]],
              actual: dict[bytes, dict[str, int | str]]) -> str | None:
    """None when two snapshots match, else a short description of the first differences."""
    problems = diff_trees(expected, actual, limit=3)
    if not problems:
        return None
    return "; ".join(problems)
