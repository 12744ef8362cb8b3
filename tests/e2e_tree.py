"""Deterministic source trees for the end-to-end tests: three states of one tree full of edge cases.

State 0 has unicode and non-UTF-8 names, names > 100 bytes, paths > 255 bytes, symlinks (relative,
absolute, dangling, to a directory), empty files and directories, a FIFO, a hard link, odd modes,
sizes around the 512-byte and 64 KiB boundaries, a database-like file with real in-place edits
later on, and 3 MiB of random data that spans several volumes with ``--volsize 1``. States 1 and 2
each apply a mix of in-place edits, appends, truncations, deletions, additions, a symlink retarget,
a chmod-only change and a type change.
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
