"""Every source tree the tests back up, in one place, from the same few primitives.

``build_states``: the end-to-end tests' tree in three states.

State 0 has unicode and non-UTF-8 names, names > 100 bytes, paths > 255 bytes, symlinks (relative,
absolute, dangling, to a directory), empty files and directories, a FIFO, a hard link, odd modes,
sizes around the 512-byte and 64 KiB boundaries, a database-like file with real in-place edits
later on, and 3 MiB of random data that spans several volumes with ``--volsize 1``. States 1 and 2
each apply a mix of in-place edits, appends, truncations, deletions, additions, a symlink retarget,
a chmod-only change and a type change.

``volume_tree``: large compressible and random files and 300 small files, for volume sizes.
``odd_entries_tree`` / ``change_odd_entries``: every name length and entry type at the tar
format's edges, for byte-identical tar streams. ``small_tree``: a few MiB for encryption runs.
(The long-chain tree of ``test_restore_engine`` changes step by step and stays with its test.)
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess

BASE = 1_600_000_000
MiB = 1 << 20
NON_UTF8 = b"latin1_caf\xe9_\xff\xfe.txt"
NON_UTF8_DIR = b"dir_\xe9t\xe9"


def _write(path, data, mtime, mode=None):
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


def _symlink(target, path, mtime):
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(os.fsencode(target), path)
    os.utime(path, (mtime, mtime), follow_symlinks=False)


def _db_pages(rng, size, page=4096):
    words = b"customer order invoice status shipped backup restore volume delta patch".split()
    out = bytearray()
    n = 0
    while len(out) < size:
        text = b" ".join(rng.choice(words) for _ in range(40))
        body = struct.pack("<QI", n, 0xDB0FF1CE) + rng.randbytes(512) + text * 8
        out += body[:page].ljust(page, b"\0")
        n += 1
    return bytes(out[:size])


def _fix_dir_mtimes(root, mtime):
    root = os.fsencode(root)
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.utime(dirpath, (mtime, mtime))


def build_state0(root):
    """Write state 0 under root (must not exist)."""
    rng = random.Random(1234)
    r = os.fsencode(root)
    os.makedirs(r)
    j = lambda *p: os.path.join(r, *[os.fsencode(x) for x in p])
    _write(j("big", "random.bin"), rng.randbytes(3 * MiB + 12345), BASE + 1)
    _write(j("db", "main.db"), _db_pages(rng, 2 * MiB), BASE + 2)
    _write(j("db", "journal.log"), b"".join(b"entry %06d ok\n" % i for i in range(4000)),
           BASE + 3)
    for size in (0, 1, 511, 512, 513, 65535, 65536, 65537):
        _write(j("sizes", f"s_{size}.bin"), rng.randbytes(size), BASE + 10 + size % 97)
    _write(j("Grüße", "日本語.txt"), "こんにちは世界\n".encode() * 80, BASE + 20)
    _write(j("Grüße", "emoji_🎉.txt"), "🎉 party\n".encode() * 50, BASE + 21)
    _write(j(NON_UTF8), b"not utf-8 name\n" * 30, BASE + 22)
    _write(j(NON_UTF8_DIR, b"inner\xa0file"), b"inner\n" * 10, BASE + 23)
    _write(j("names", "n" * 150 + ".txt"), b"long name\n" * 20, BASE + 24)
    _write(j("names", "長い名前" * 10 + ".txt"), b"long unicode name\n" * 5, BASE + 25)
    deep = ["deep_" + c * 70 for c in "abcd"]
    _write(j(*deep, "deep_file_" + "z" * 60 + ".dat"), rng.randbytes(9000), BASE + 26)
    assert len(os.path.join(*deep).encode()) > 255
    os.makedirs(j("empty", "nested", "deeper"))
    os.makedirs(j("empty_dir"))
    for i in range(5):
        _write(j("empty", f"zero_{i}"), b"", BASE + 30 + i)
    _write(j("modes", "private.txt"), b"secret\n", BASE + 40, mode=0o600)
    _write(j("modes", "script.sh"), b"#!/bin/sh\necho hi\n", BASE + 41, mode=0o755)
    _write(j("modes", "readonly.txt"), b"ro\n", BASE + 42, mode=0o444)
    os.makedirs(j("modes", "closed_dir"))
    _write(j("modes", "closed_dir", "in.txt"), b"in\n", BASE + 43)
    os.chmod(j("modes", "closed_dir"), 0o700)
    _symlink("../db/main.db", j("links", "to_file"), BASE + 50)
    _symlink("../Grüße", j("links", "to_dir"), BASE + 50)
    _symlink("/nonexistent/absolute/target", j("links", "absolute"), BASE + 50)
    _symlink("../no/such/target", j("links", "dangling"), BASE + 50)
    _symlink(b"../" + NON_UTF8, j("links", "to_non_utf8"), BASE + 50)
    os.makedirs(j("special"))
    os.mkfifo(j("special", "fifo"))
    os.utime(j("special", "fifo"), (BASE + 60, BASE + 60))
    _write(j("special", "hard_a.txt"), b"hard linked\n" * 100, BASE + 61)
    os.link(j("special", "hard_a.txt"), j("special", "hard_b.txt"))
    for i in range(150):
        d = j("small", f"d{i % 7}", f"e{i % 3}")
        _write(os.path.join(d, b"f_%03d.txt" % i), rng.randbytes(rng.randint(0, 6000)),
               BASE + 100 + i)
    _fix_dir_mtimes(root, BASE + 5000)


def _copy(src, dst):
    subprocess.run(["cp", "-a", os.fsencode(src), os.fsencode(dst)], check=True)


def _edit_in_place(path, rng, regions, mtime):
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        for _ in range(regions):
            f.seek(rng.randrange(0, size - 4096))
            f.write(rng.randbytes(4096))
    os.utime(path, (mtime, mtime))


def build_state1(state0, root):
    """Copy state 0 to root and apply the first set of changes."""
    _copy(state0, root)
    rng = random.Random(5678)
    r = os.fsencode(root)
    j = lambda *p: os.path.join(r, *[os.fsencode(x) for x in p])
    t = BASE + 10_000
    _edit_in_place(j("db", "main.db"), rng, 12, t + 1)
    _edit_in_place(j("big", "random.bin"), rng, 3, t + 2)
    with open(j("db", "journal.log"), "ab") as f:
        f.write(b"".join(b"entry %06d new\n" % i for i in range(4000, 4500)))
    os.utime(j("db", "journal.log"), (t + 3, t + 3))
    with open(j("sizes", "s_65537.bin"), "r+b") as f:
        f.truncate(30000)
    os.utime(j("sizes", "s_65537.bin"), (t + 4, t + 4))
    for i in range(0, 150, 10):
        os.unlink(j("small", f"d{i % 7}", f"e{i % 3}", f"f_{i:03d}.txt"))
    for i in range(5):
        _write(j("added", f"new_{i}.txt"), rng.randbytes(2000 + i), t + 10 + i)
    _write(j("added", b"new_\xe4\xf6\xfc.bin"), rng.randbytes(777), t + 16)
    _symlink("../Grüße/日本語.txt", j("links", "to_file"), t + 20)
    os.chmod(j("modes", "private.txt"), 0o640)
    _write(j("empty", "zero_0"), b"no longer empty\n", t + 21)
    _fix_dir_mtimes(root, t + 5000)


def build_state2(state1, root):
    """Copy state 1 to root and apply the second set of changes."""
    _copy(state1, root)
    rng = random.Random(9012)
    r = os.fsencode(root)
    j = lambda *p: os.path.join(r, *[os.fsencode(x) for x in p])
    t = BASE + 20_000
    _edit_in_place(j("db", "main.db"), rng, 5, t + 1)
    with open(j("db", "main.db"), "ab") as f:
        f.write(_db_pages(rng, 300_000))
    os.utime(j("db", "main.db"), (t + 1, t + 1))
    os.unlink(j("Grüße", "emoji_🎉.txt"))
    shutil.rmtree(j("empty_dir"))
    os.unlink(j("sizes", "s_512.bin"))
    _symlink("s_513.bin", j("sizes", "s_512.bin"), t + 2)  # file -> symlink
    _write(j("names", "m" * 200 + ".dat"), rng.randbytes(4096), t + 3)
    with open(j(NON_UTF8), "ab") as f:
        f.write(b"appended\n")
    os.utime(j(NON_UTF8), (t + 4, t + 4))
    _write(j("small", "d1", "e1", "f_001.txt"), rng.randbytes(100), t + 5)
    _fix_dir_mtimes(root, t + 5000)


def build_states(base):
    """Create base/s0, base/s1, base/s2 and return their paths."""
    base = os.fsencode(base)
    s = [os.path.join(base, b"s%d" % i) for i in range(3)]
    build_state0(s[0])
    build_state1(s[0], s[1])
    build_state2(s[1], s[2])
    return s


# ------------------------------------------------------------------------- trees of other tests

#: mtime of the volume and odd-entry trees.
TREE_MTIME = 1_700_000_000
#: uid beyond 8**7: a PAX uid record, no user name.
BIG_UID = 4_000_000




def _text(rng, n):
    words = [b"order", b"invoice", b"customer", b"total", b"shipped", b"balance", b"street"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" %d;" % rng.randrange(10**6)
    return bytes(out[:n])


def volume_tree(root):
    """A deterministic tree: large compressible and random files, small files, odd names."""
    rng = random.Random(4242)
    root.mkdir()
    (root / "big").mkdir()
    (root / "big" / "db.bin").write_bytes(_text(rng, 3_500_000))
    (root / "big" / "random.bin").write_bytes(rng.randbytes(1_300_000))
    (root / "big" / "exact64k").write_bytes(rng.randbytes(65536 * 3))
    small = root / "small"
    small.mkdir()
    for i in range(300):
        d = small / f"d{i % 17:02d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i:03d}.txt").write_bytes(_text(rng, rng.randrange(0, 9000)))
    (root / "unicodé ✓.txt").write_bytes(b"u" * 700)
    (root / "odd").mkdir()
    os.mkdir(bytes(root / "odd") + b"/caf\xe9")
    (root / ("n" * 140)).write_bytes(b"long name")
    (root / "empty").write_bytes(b"")
    (root / "emptydir").mkdir()
    os.symlink("big/db.bin", root / "link")
    for dirpath, dirnames, filenames in os.walk(bytes(root)):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (TREE_MTIME, TREE_MTIME), follow_symlinks=False)
    os.utime(bytes(root), (TREE_MTIME, TREE_MTIME))




def _tar_name(n):
    """A file name that makes ``snapshot/<name>`` exactly ``n`` characters."""
    return "e" * (n - len("snapshot/"))


def odd_entries_tree(root):
    """The tree described in the module docstring; returns the extra checks it could not make."""
    rng = random.Random(77)
    root.mkdir()
    skipped = []
    for n in (99, 100, 101, 155, 256):
        (root / _tar_name(n)).write_bytes(b"%d" % n)
    (root / "d" / _tar_name(100)).mkdir(parents=True)  # a directory name crossing 100 with its '/'
    (root / "d" / _tar_name(99)).write_bytes(b"")
    raw = bytes(root) + b"/"
    os.mkdir(raw + b"bad\xff\xfe dir")
    with open(raw + b"bad\xff\xfe dir/" + b"x\xe9" * 60, "wb") as f:  # long and not UTF-8
        f.write(b"latin-1 name")
    (root / ("unicodé ✓ " * 12)).write_bytes(b"long unicode")
    (root / "café").write_bytes(b"short unicode")
    os.symlink("t" * 150, root / "long-link")
    os.symlink(b"caf\xe9/target", raw + b"bad-link")
    os.symlink("ziel/äöü", root / "unicode-link")
    os.mkfifo(root / "fifo")
    try:
        os.mknod(root / "null-dev", 0o600 | 0o020000, os.makedev(1, 3))
    except OSError:
        skipped.append("device")
    (root / "exact64k").write_bytes(rng.randbytes(65536))
    (root / ("multi" * 30)).write_bytes(rng.randbytes(65536 * 2 + 7))
    (root / "empty").write_bytes(b"")
    (root / "big-owner").write_bytes(b"owned by a big uid")
    try:
        os.chown(root / "big-owner", BIG_UID, BIG_UID)
    except OSError:
        skipped.append("big uid")
    (root / "far-future").write_bytes(b"mtime past 8**11")
    for dirpath, dirnames, filenames in os.walk(bytes(root)):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (TREE_MTIME, TREE_MTIME), follow_symlinks=False)
    try:
        os.utime(root / "far-future", (8**11 + 5, 8**11 + 5))
    except OSError:
        skipped.append("far-future mtime")
    os.utime(bytes(root), (TREE_MTIME, TREE_MTIME))
    return skipped


def change_odd_entries(root):
    """Deletions (file, fifo, symlinks, a directory) and one changed file for the incremental."""
    raw = bytes(root) + b"/"
    os.unlink(root / "fifo")
    os.unlink(root / "long-link")
    os.unlink(raw + b"bad-link")
    os.unlink(root / _tar_name(101))
    os.unlink(raw + b"bad\xff\xfe dir/" + b"x\xe9" * 60)
    os.rmdir(raw + b"bad\xff\xfe dir")
    with open(root / ("multi" * 30), "r+b") as f:
        f.seek(70000)
        f.write(b"changed" * 100)
    os.utime(root / ("multi" * 30), (TREE_MTIME + 60, TREE_MTIME + 60))
    os.utime(bytes(root), (TREE_MTIME, TREE_MTIME))


def small_tree(root):
    """A random 3.5 MB file, 4 MB of text lines and a tiny file."""
    rnd = random.Random(11)
    (root / "d").mkdir(parents=True)
    (root / "d" / "random.bin").write_bytes(rnd.randbytes(3_500_000))
    (root / "text.txt").write_bytes(b"".join(b"line %d of some text\n" % i
                                             for i in range(200_000)))
    (root / "small").write_bytes(b"x" * 100)
