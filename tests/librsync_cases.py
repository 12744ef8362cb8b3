"""Shared helpers for the librsync tests: the two backends, duplicity's wrappers, a small
reference model of the formats, and the generator of (old, new) test pairs.

The stock backend is duplicity's own C module, loaded by path so that it can live in the same
process as dupcore's drop-in (the start-up hook makes ``import duplicity._librsync`` return
dupcore's module). Never hand the stock module an invalid signature: it crashes the process.
"""

import contextlib
import importlib.machinery
import importlib.util
import io
import math
import os
import random
import struct
import sys
from dataclasses import dataclass

import dupcore._librsync as dupcore_rs
import duplicity

SIG_MAGIC = 0x72730136
DELTA_MAGIC = 0x72730236
JOB = 65536
MAX_MISS_232 = 32768
MAX_MISS_234 = 65533

# --------------------------------------------------------------------------- backends

_stock = None


def _duplicity_dir():
    return importlib.util.find_spec("duplicity").submodule_search_locations[0]


def _pristine_wrappers():
    """A private copy of duplicity's ``librsync.py`` (LikeFile, DeltaFile, PatchedFile, ...).

    dupcore's activation may replace the classes of the live ``duplicity.librsync`` module with
    its own; the differential tests need duplicity's code itself, with a swappable backend.
    """
    path = os.path.join(_duplicity_dir(), "librsync.py")
    name = f"{duplicity.__name__}._librsync_wrappers_under_test"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


dlibrsync = _pristine_wrappers()


def stock_module():
    """Return duplicity's bundled C ``_librsync`` module, loaded once by file path."""
    global _stock
    if _stock is None:
        pkg_dir = _duplicity_dir()
        names = [n for n in os.listdir(pkg_dir) if n.startswith("_librsync.") and n.endswith(".so")]
        if not names:
            raise RuntimeError("duplicity's compiled _librsync module is not installed")
        path = os.path.join(pkg_dir, names[0])
        saved = sys.modules.get("duplicity._librsync")
        loader = importlib.machinery.ExtensionFileLoader("duplicity._librsync", path)
        spec = importlib.util.spec_from_file_location("duplicity._librsync", path, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        # Loading an extension registers it in sys.modules; put dupcore's module back.
        if saved is not None:
            sys.modules["duplicity._librsync"] = saved
        else:
            sys.modules.pop("duplicity._librsync", None)
        _stock = mod
    return _stock


def dupcore_module():
    """Return dupcore's drop-in ``_librsync`` module."""
    return dupcore_rs


@contextlib.contextmanager
def backend(mod):
    """Make duplicity's ``librsync`` wrappers use ``mod`` as their ``_librsync`` for a while."""
    saved = dlibrsync._librsync
    dlibrsync._librsync = mod
    try:
        yield
    finally:
        dlibrsync._librsync = saved


@contextlib.contextmanager
def dupcore_mode(mode):
    """Run with dupcore reproducing librsync ``mode`` ("2.3.2" or "2.3.4")."""
    saved = dupcore_rs.librsync_mode()
    dupcore_rs.set_librsync_mode(mode)
    try:
        yield
    finally:
        dupcore_rs.set_librsync_mode(saved)


def wrapper_signature(mod, data, block_len, piece=JOB):
    """Signature of ``data`` through ``librsync.SigGenerator`` fed ``piece`` bytes per update."""
    with backend(mod):
        gen = dlibrsync.SigGenerator(block_len)
        for off in range(0, len(data), piece):
            gen.update(data[off:off + piece])
        return gen.getsig()


def likefile_read_all(likefile, size=JOB):
    """Drain a ``LikeFile`` with ``read(size)`` calls as duplicity's tar writer does."""
    parts = []
    while True:
        buf = likefile.read(size)
        if not buf:
            break
        parts.append(buf)
    likefile.close()
    return b"".join(parts)


def wrapper_delta(mod, sig, new):
    """Delta of ``new`` against ``sig`` through ``librsync.DeltaFile`` (64 KiB reads)."""
    with backend(mod):
        return likefile_read_all(dlibrsync.DeltaFile(sig, io.BytesIO(new)))


def wrapper_patch(mod, basis_path, delta):
    """Apply ``delta`` to the file at ``basis_path`` through ``librsync.PatchedFile``."""
    with open(basis_path, "rb") as basis, backend(mod):
        return likefile_read_all(dlibrsync.PatchedFile(basis, io.BytesIO(delta)))


def whole_patch(mod, basis_path, delta, limit=1 << 20):
    """Apply ``delta`` with a raw patch job: dupcore's ``run`` when present, else ``cycle``.

    Raises AssertionError if the job stops making progress (that would hang LikeFile).
    """
    with open(basis_path, "rb") as basis:
        job = mod.new_patchmaker(basis)
        step = job.run if hasattr(job, "run") else (lambda b, _limit: job.cycle(b))
        out = []
        buf = memoryview(delta)
        stalls = 0
        while True:
            done, used, chunk = step(bytes(buf), limit)
            out.append(chunk)
            buf = buf[used:]
            if done:
                return b"".join(out)
            if used == 0 and not chunk:
                stalls += 1
                assert stalls < 3, "patch job makes no progress"
            else:
                stalls = 0


# --------------------------------------------------------------------------- reference model
# A compact restatement of the formats of docs/formats.md §1–3, used as an oracle where no stock
# output is available (mutated streams, non-default strong lengths).


def _rotl32(v, s):
    v &= 0xFFFFFFFF
    return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF


_R2 = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_R3 = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)


def md4(data):
    """MD4 digest (RFC 1320) of ``data``; pure Python, for small inputs."""
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    pad = b"\x80" + b"\0" * ((55 - len(data)) % 64) + struct.pack("<Q", (8 * len(data)) & (2**64 - 1))
    msg = bytes(data) + pad
    for blk in range(0, len(msg), 64):
        x = struct.unpack_from("<16I", msg, blk)
        a, b, c, d = state
        for i in range(16):
            f = (b & c) | (~b & d)
            a, b, c, d = d, _rotl32(a + f + x[i], (3, 7, 11, 19)[i % 4]), b, c
        for i in range(16):
            g = (b & c) | (b & d) | (c & d)
            a, b, c, d = d, _rotl32(a + g + x[_R2[i]] + 0x5A827999, (3, 5, 9, 13)[i % 4]), b, c
        for i in range(16):
            h = b ^ c ^ d
            a, b, c, d = d, _rotl32(a + h + x[_R3[i]] + 0x6ED9EBA1, (3, 9, 11, 15)[i % 4]), b, c
        state = [(s + v) & 0xFFFFFFFF for s, v in zip(state, (a, b, c, d))]
    return struct.pack("<4I", *state)


def weak_sum(window):
    """librsync's raw rollsum of ``window`` (the value stored in signatures)."""
    n = len(window)
    s1 = s2 = 0
    for i, byte in enumerate(window):
        s1 += byte + 31
        s2 += (n - i) * (byte + 31)
    return ((s2 & 0xFFFF) << 16) | (s1 & 0xFFFF)


def match_key(weak):
    """Hash-table key of a raw weak sum: MurmurHash3's finaliser, with 0 mapped to 0xFFFFFFFF."""
    h = weak & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h or 0xFFFFFFFF


def ref_signature(data, block_len, strong_len=8):
    """Signature of ``data`` with any strong length 1..16 (slow; small inputs only)."""
    parts = [struct.pack(">III", SIG_MAGIC, block_len, strong_len)]
    for off in range(0, len(data), block_len):
        blk = data[off:off + block_len]
        parts.append(struct.pack(">I", weak_sum(blk)) + md4(blk)[:strong_len])
    return b"".join(parts)


class RefError(Exception):
    """A stream the reference model rejects; ``code`` is the librsync result number."""

    def __init__(self, code, why):
        super().__init__(f"{code}: {why}")
        self.code = code


def ref_parse_signature(sig):
    """Validate a signature as dupcore must: return (block_len, strong_len, records) or raise.

    Only MD4 signatures are accepted (other librsync magics are rejected by dupcore).
    """
    if len(sig) < 12:
        raise RefError(103, "short header")
    magic, block_len, strong_len = struct.unpack_from(">III", sig)
    if magic != SIG_MAGIC:
        raise RefError(104, "magic")
    if block_len < 1:
        raise RefError(106, "block_len 0")
    if strong_len > 32:
        raise RefError(106, "strong_len out of range")
    if strong_len > 16:
        raise RefError(108, "strong_len too long for MD4")
    strong_len = strong_len or 16
    rec = 4 + strong_len
    body = sig[12:]
    count, rest = divmod(len(body), rec)
    if rest >= 4:
        raise RefError(103, "ends inside a strong sum")
    records = [
        (struct.unpack_from(">I", body, i * rec)[0], bytes(body[i * rec + 4:(i + 1) * rec]))
        for i in range(count)
    ]
    return block_len, strong_len, records


def _int_width(v):
    return 1 if v <= 0xFF else 2 if v <= 0xFFFF else 4 if v <= 0xFFFFFFFF else 8


_WIDTH_INDEX = {1: 0, 2: 1, 4: 2, 8: 3}


def encode_literal(data, width=None):
    """LITERAL command carrying ``data`` (``width`` forces a parameter width: 1, 2, 4 or 8)."""
    n = len(data)
    if width is None:
        if n <= 64:
            return bytes([n]) + data
        width = _int_width(n)
    return bytes([0x41 + _WIDTH_INDEX[width]]) + n.to_bytes(width, "big") + data


def encode_copy(pos, length, wpos=None, wlen=None):
    """COPY command (parameter widths chosen minimal unless forced)."""
    wpos = wpos or _int_width(pos)
    wlen = wlen or _int_width(length)
    op = 0x45 + 4 * _WIDTH_INDEX[wpos] + _WIDTH_INDEX[wlen]
    return bytes([op]) + pos.to_bytes(wpos, "big") + length.to_bytes(wlen, "big")


class _Roll:
    """Incremental rollsum over a window (rotate: slide by one byte; rollout: drop the first)."""

    def __init__(self, window):
        n = len(window)
        self.count = n
        self.s1 = sum(window) + 31 * n
        self.s2 = sum((n - i) * (v + 31) for i, v in enumerate(window))

    def rotate(self, out_byte, in_byte):
        self.s1 += in_byte - out_byte
        self.s2 += self.s1 - self.count * (out_byte + 31)

    def rollout(self, out_byte):
        self.s1 -= out_byte + 31
        self.s2 -= self.count * (out_byte + 31)
        self.count -= 1

    def digest(self):
        return ((self.s2 & 0xFFFF) << 16) | (self.s1 & 0xFFFF)


def ref_delta(sig, new, max_miss=MAX_MISS_234):
    """librsync 2.3.x delta of ``new`` against ``sig`` (slack literals per 64 KiB); slow."""
    block_len, strong_len, records = ref_parse_signature(sig)
    out = [struct.pack(">I", DELTA_MAGIC)]
    if not records:
        for off in range(0, len(new), JOB):
            out.append(encode_literal(new[off:off + JOB]))
        out.append(b"\0")
        return b"".join(out)
    table = {}
    for idx, (weak, strong) in enumerate(records):
        table.setdefault(match_key(weak), {}).setdefault(strong, idx)
    n = len(new)
    lit = cur = cpos = clen = 0
    roll = None

    def flush():
        nonlocal lit, clen
        if clen:
            out.append(encode_copy(cpos, clen))
            clen = 0
        elif cur > lit:
            out.append(encode_literal(new[lit:cur]))
            lit = cur

    while cur < n:
        scanning = cur + block_len < n
        if roll is None:
            roll = _Roll(new[cur:cur + block_len])
        wlen = roll.count
        idx = None
        cands = table.get(match_key(roll.digest()))
        if cands:
            idx = cands.get(md4(new[cur:cur + wlen])[:strong_len])
        if idx is not None:
            pos = idx * block_len
            if clen and cpos + clen == pos:
                clen += wlen
            else:
                flush()
                cpos, clen = pos, wlen
            cur += wlen
            lit = cur
            roll = None
            continue
        if scanning:
            roll.rotate(new[cur], new[cur + block_len])
        else:
            roll.rollout(new[cur])
        if clen or cur - lit >= max_miss:
            flush()
        cur += 1
    flush()
    out.append(b"\0")
    return b"".join(out)


def ref_patch(basis, delta):
    """Apply ``delta`` to ``basis`` per docs/formats.md §3; raise RefError where librsync fails."""
    if len(delta) < 4:
        raise RefError(103, "short magic")
    if struct.unpack_from(">I", delta)[0] != DELTA_MAGIC:
        raise RefError(104, "magic")
    pos = 4
    out = []

    def take(k):
        nonlocal pos
        if pos + k > len(delta):
            raise RefError(103, "truncated")
        chunk = delta[pos:pos + k]
        pos += k
        return chunk

    def number(k):
        return int.from_bytes(take(k), "big", signed=(k == 8))

    while True:
        op = take(1)[0]
        if op == 0:
            return b"".join(out)
        if op <= 0x40:
            out.append(take(op))
        elif op <= 0x44:
            n = number((1, 2, 4, 8)[op - 0x41])
            if n <= 0:
                raise RefError(106, "literal length")
            out.append(take(n))
        elif op <= 0x54:
            k = op - 0x45
            where = number((1, 2, 4, 8)[k // 4])
            n = number((1, 2, 4, 8)[k % 4])
            if n <= 0 or where < 0:
                raise RefError(106, "copy parameters")
            chunk = basis[where:where + n]
            if len(chunk) < n:
                raise RefError(103, "copy past end of basis")
            out.append(chunk)
        else:
            raise RefError(106, "reserved opcode")


def parse_delta(delta):
    """Split a well-formed delta into a list of ("L", data) and ("C", pos, len) commands."""
    assert struct.unpack_from(">I", delta)[0] == DELTA_MAGIC
    pos, cmds = 4, []
    while True:
        op = delta[pos]
        pos += 1
        if op == 0:
            return cmds
        if op <= 0x40:
            cmds.append(("L", delta[pos:pos + op]))
            pos += op
        elif op <= 0x44:
            w = (1, 2, 4, 8)[op - 0x41]
            n = int.from_bytes(delta[pos:pos + w], "big")
            cmds.append(("L", delta[pos + w:pos + w + n]))
            pos += w + n
        else:
            k = op - 0x45
            ww, wl = (1, 2, 4, 8)[k // 4], (1, 2, 4, 8)[k % 4]
            where = int.from_bytes(delta[pos:pos + ww], "big")
            n = int.from_bytes(delta[pos + ww:pos + ww + wl], "big")
            cmds.append(("C", where, n))
            pos += ww + wl


# --------------------------------------------------------------------------- pair generator


def get_block_size(file_len):
    """duplicity 3.2.1's signature block length for a file of ``file_len`` bytes."""
    s = math.isqrt(file_len)
    return ((max(1, s) + 511) // 512) * 512


@dataclass
class Pair:
    """One differential case: basis ``old``, new file ``new``, signature block length."""

    name: str
    old: bytes
    new: bytes
    block_len: int


def _rb(rng, n):
    return rng.randbytes(n)


def _edit_scattered(rng, data, count):
    buf = bytearray(data)
    for _ in range(count):
        if buf:
            buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
    return bytes(buf)


def _insert_delete(rng, data, count):
    buf = bytearray(data)
    for _ in range(count):
        at = rng.randrange(len(buf) + 1)
        if rng.random() < 0.5 or not buf:
            buf[at:at] = _rb(rng, rng.choice((1, 2, 7, 100, 513, 4000)))
        else:
            del buf[at:at + rng.choice((1, 3, 64, 511, 512, 2000))]
    return bytes(buf)


def weak_twin(block, rng):
    """A block with the same rollsum as ``block`` but (almost surely) other bytes.

    Adds +1, -2, +1 at three consecutive positions, which leaves both rollsum halves unchanged.
    """
    buf = bytearray(block)
    for _ in range(50):
        if len(buf) < 3:
            return bytes(buf)
        i = rng.randrange(len(buf) - 2)
        if buf[i] < 255 and buf[i + 1] >= 2 and buf[i + 2] < 255:
            buf[i] += 1
            buf[i + 1] -= 2
            buf[i + 2] += 1
            return bytes(buf)
    return bytes(buf)


BLOCK_LENS = (512, 512, 512, 1024, 1536, 2048, 4096, 8192, 16384, 32768, 65536, 513, 700, 1000, 3333)


def _pick_block(rng, size_hint=None):
    if size_hint is not None and rng.random() < 0.35:
        return get_block_size(size_hint)
    return rng.choice(BLOCK_LENS)


def _gen_slack(rng):
    n = rng.choice((0, 1, 100, 65535, 65536, 65537, 131072, 131073, 200000, rng.randrange(300000)))
    return b"", _rb(rng, n), _pick_block(rng)


def _gen_empty_new(rng):
    return _rb(rng, rng.choice((0, 1, 511, 512, 5000, 70000))), b"", _pick_block(rng)


def _gen_short_old(rng):
    b = _pick_block(rng)
    old = _rb(rng, rng.randrange(1, b))
    choice = rng.randrange(5)
    if choice == 0:
        new = old
    elif choice == 1:
        new = _rb(rng, rng.randrange(0, 3 * b)) + old
    elif choice == 2:
        new = old + _rb(rng, rng.randrange(1, 100))
    elif choice == 3:
        new = old[rng.randrange(len(old)):] if old else b""
    else:
        new = _rb(rng, rng.randrange(2 * b))
    return old, new, b


def _gen_exact_multiple(rng):
    b = _pick_block(rng)
    old = _rb(rng, b * rng.randrange(1, 9))
    choice = rng.randrange(5)
    if choice == 0:
        new = old
    elif choice == 1:
        new = old + _rb(rng, 1)
    elif choice == 2:
        new = old[:-1]
    elif choice == 3:
        new = old[b:] + old[:b]
    else:
        new = _rb(rng, rng.randrange(1, b)) + old
    return old, new, b


def _gen_repeated_blocks(rng):
    b = rng.choice((512, 1024, 700, 2048))
    x = _rb(rng, b)
    y = _rb(rng, b)
    old = x * rng.randrange(2, 6) + y + x * rng.randrange(0, 3)
    pieces = [rng.choice((x, y, x[: b // 2], _rb(rng, rng.randrange(1, 50)))) for _ in range(rng.randrange(1, 12))]
    return old, b"".join(pieces), b


def _gen_zeros(rng):
    b = _pick_block(rng)
    old = bytes(rng.choice((0, 1, b - 1, b, 3 * b, 5 * b + 17, 100000)))
    new = bytes(rng.choice((0, 1, b, 2 * b + 1, 7 * b, 150000)))
    if new and rng.random() < 0.5:
        new = _edit_scattered(rng, new, rng.randrange(1, 5))
    return old, new, b


def _gen_long_literal(rng):
    b = _pick_block(rng)
    old = _rb(rng, rng.randrange(b, 8 * b + 2))
    lit = _rb(rng, rng.choice((65533, 65534, 65535, 65536, 70000, 131066, 131067, 200000)))
    at = rng.randrange(len(old) + 1)
    new = old[:at] + lit + old[at:]
    return old, new, b


def _gen_tail(rng):
    b = _pick_block(rng)
    old = _rb(rng, b * rng.randrange(1, 5) + rng.randrange(1, b))
    tail = old[-(len(old) % b):]
    choice = rng.randrange(4)
    if choice == 0:
        new = _rb(rng, rng.randrange(0, 2 * b)) + tail
    elif choice == 1:
        new = old[: (len(old) // b) * b] + tail
    elif choice == 2:
        new = old + old[-(len(old) % b):]
    else:
        cut = rng.randrange(1, len(tail) + 1)
        new = _rb(rng, rng.randrange(b)) + tail[:cut]
    return old, new, b


def _gen_scattered(rng):
    size = rng.choice((1000, 10000, 50000, 150000, 300000))
    old = _rb(rng, size)
    new = _edit_scattered(rng, old, rng.randrange(1, 40))
    return old, new, _pick_block(rng, size)


def _gen_insdel(rng):
    size = rng.choice((2000, 20000, 80000, 250000))
    old = _rb(rng, size)
    new = _insert_delete(rng, old, rng.randrange(1, 20))
    return old, new, _pick_block(rng, size)


def _gen_shuffle(rng):
    b = rng.choice((512, 1024, 2048, 1000))
    blocks = [_rb(rng, b) for _ in range(rng.randrange(2, 30))]
    old = b"".join(blocks) + _rb(rng, rng.randrange(b))
    rng.shuffle(blocks)
    if rng.random() < 0.5:
        blocks = blocks[: rng.randrange(1, len(blocks) + 1)]
    new = b"".join(blocks)
    return old, new, b


def _gen_low_entropy(rng):
    alphabet = rng.choice((b"ab", b"abc", b"\0\1", b"xyz0"))
    b = rng.choice((512, 513, 1024))
    old = bytes(rng.choice(alphabet) for _ in range(rng.randrange(b, 20 * b)))
    new = _insert_delete(rng, old, rng.randrange(1, 8))
    return old, new, b


def _gen_weak_collision(rng):
    b = rng.choice((512, 700, 1024, 2048))
    blocks = [_rb(rng, b) for _ in range(rng.randrange(2, 10))]
    old = b"".join(blocks)
    new = b"".join(weak_twin(blk, rng) if rng.random() < 0.5 else blk for blk in blocks)
    if rng.random() < 0.5:
        # duplicate weak sums inside the signature too
        old = old + weak_twin(blocks[0], rng) + blocks[0]
    return old, new, b


def _gen_text(rng):
    words = [b"alpha", b"beta", b"gamma", b"delta ", b"\n", b"backup", b"duplicity", b"  "]
    old = b"".join(rng.choice(words) for _ in range(rng.randrange(100, 20000)))
    new = _insert_delete(rng, old, rng.randrange(1, 10))
    return old, new, _pick_block(rng, len(old))


def _gen_append_truncate(rng):
    size = rng.randrange(1, 200000)
    old = _rb(rng, size)
    if rng.random() < 0.5:
        new = old + _rb(rng, rng.randrange(1, 100000))
    else:
        new = old[: rng.randrange(size)]
    return old, new, _pick_block(rng, size)


def _gen_identical(rng):
    size = rng.choice((1, 511, 512, 513, 4096, 65536, 65537, 300000))
    old = _rb(rng, size)
    return old, old, _pick_block(rng, size)


GENERATORS = {
    "slack": (_gen_slack, 120),
    "empty_new": (_gen_empty_new, 60),
    "short_old": (_gen_short_old, 150),
    "exact_multiple": (_gen_exact_multiple, 150),
    "repeated_blocks": (_gen_repeated_blocks, 150),
    "zeros": (_gen_zeros, 120),
    "long_literal": (_gen_long_literal, 80),
    "tail": (_gen_tail, 200),
    "scattered": (_gen_scattered, 200),
    "insert_delete": (_gen_insdel, 200),
    "shuffle": (_gen_shuffle, 150),
    "low_entropy": (_gen_low_entropy, 120),
    "weak_collision": (_gen_weak_collision, 150),
    "text": (_gen_text, 100),
    "append_truncate": (_gen_append_truncate, 100),
    "identical": (_gen_identical, 60),
}


def case_ids():
    """All (category, index) identifiers of the generated pairs."""
    return [(cat, i) for cat, (_, count) in GENERATORS.items() for i in range(count)]


def make_pair(category, index):
    """Build the pair ``index`` of ``category`` deterministically."""
    gen, _ = GENERATORS[category]
    rng = random.Random(f"{category}-{index}")
    old, new, block_len = gen(rng)
    return Pair(f"{category}-{index}", old, new, block_len)
