"""Differential tests: dupcore's ``_librsync`` against duplicity's stock C module and Debian's
``rdiff``, driven through duplicity's own ``librsync`` wrappers (docs/formats.md §1–3, §7)."""

import io
import os
import random
import shutil
import subprocess

import librsync_cases as lc
import pytest

STOCK = lc.stock_module()
DUPCORE = lc.dupcore_module()
RDIFF = shutil.which("rdiff") or "/usr/bin/rdiff"
HAVE_RDIFF = os.path.exists(RDIFF)


def _check_pair(pair, tmp_path):
    """Signature, delta and cross-patch checks of one pair against the stock module."""
    piece = random.Random(pair.name).choice((lc.JOB, lc.JOB, 1000, 32768, 100000))
    sig_stock = lc.wrapper_signature(STOCK, pair.old, pair.block_len)
    sig_dup = lc.wrapper_signature(DUPCORE, pair.old, pair.block_len, piece=piece)
    assert sig_dup == sig_stock, f"{pair.name}: signature differs"

    delta_stock = lc.wrapper_delta(STOCK, sig_stock, pair.new)
    delta_dup = lc.wrapper_delta(DUPCORE, sig_stock, pair.new)
    assert delta_dup == delta_stock, f"{pair.name}: delta differs"

    basis = tmp_path / f"{pair.name}.old"
    basis.write_bytes(pair.old)
    assert lc.wrapper_patch(DUPCORE, basis, delta_stock) == pair.new, f"{pair.name}: dupcore patch"
    assert lc.wrapper_patch(STOCK, basis, delta_dup) == pair.new, f"{pair.name}: stock patch"


@pytest.mark.parametrize("category,index", lc.case_ids(), ids=lambda v: str(v))
def test_pair_matches_stock(category, index, tmp_path):
    """Generated (old, new) pair: bytes equal to stock, and patches reproduce ``new``."""
    _check_pair(lc.make_pair(category, index), tmp_path)


def _big_pairs():
    """A few 64 MiB pairs: scattered edits, slack (empty old), zeros with edits."""
    size = 64 << 20
    rng = random.Random("big")
    old = rng.randbytes(size)
    buf = bytearray(old)
    for _ in range(2000):
        at = rng.randrange(size)
        buf[at:at + 8] = rng.randbytes(8)
    yield lc.Pair("big-scattered", old, bytes(buf), lc.get_block_size(size))
    del buf
    yield lc.Pair("big-slack", b"", old[: size - 12345], 512)
    zeros = bytes(size)
    edited = bytearray(zeros)
    for _ in range(100):
        edited[rng.randrange(size)] = 1
    edited[size // 2:size // 2] = rng.randbytes(200000)
    yield lc.Pair("big-zeros", zeros, bytes(edited), 65536)


def test_big_pairs(tmp_path):
    """64 MiB files: the same checks as the generated pairs."""
    for pair in _big_pairs():
        _check_pair(pair, tmp_path)
        (tmp_path / f"{pair.name}.old").unlink()


def test_slack_delta_structure():
    """Empty basis: one literal per 65536-byte chunk of input through LikeFile, then END."""
    rng = random.Random(7)
    sig = lc.wrapper_signature(DUPCORE, b"", 512)
    for n in (1, 64, 65, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 5, 500000):
        new = rng.randbytes(n)
        delta = lc.wrapper_delta(DUPCORE, sig, new)
        cmds = lc.parse_delta(delta)
        expect = [new[off:off + lc.JOB] for off in range(0, n, lc.JOB)]
        assert [c[1] for c in cmds] == expect
        assert all(c[0] == "L" for c in cmds)
        assert delta.count(b"\x43\x00\x01\x00\x00") >= n // lc.JOB
        assert delta == lc.wrapper_delta(STOCK, sig, new)


def test_blocklen_zero_means_default():
    """``new_sigmaker(0)`` uses librsync's default block length 2048, as stock does."""
    data = random.Random(3).randbytes(10000)
    assert lc.wrapper_signature(DUPCORE, data, 0) == lc.wrapper_signature(STOCK, data, 0)
    assert lc.wrapper_signature(DUPCORE, data, 0)[4:8] == (2048).to_bytes(4, "big")


# --------------------------------------------------------------------------- cycle() chunking


def _drive_cycle(job, data, rng, max_piece):
    """Feed ``data`` to ``job.cycle`` in random pieces with LikeFile's resend rule; return output."""
    out = []
    inbuf = b""
    pos = 0
    while True:
        if pos < len(data):
            take = rng.randrange(1, max_piece + 1)
            inbuf += data[pos:pos + take]
            pos += take
        elif inbuf:
            pass
        done, used, chunk = job.cycle(inbuf)
        assert isinstance(done, int) and 0 <= used <= len(inbuf)
        if hasattr(job, "run"):  # patch jobs bound their output like librsync's buffer
            assert len(chunk) <= lc.JOB
        out.append(chunk)
        inbuf = inbuf[used:]
        if done:
            assert pos >= len(data)
            return b"".join(out)


@pytest.mark.parametrize("seed", range(40))
def test_raw_cycle_random_chunking(seed, tmp_path):
    """The raw ``cycle()`` API gives the same bytes however the input is cut."""
    rng = random.Random(seed)
    pair = lc.make_pair(*rng.choice(lc.case_ids()))
    max_piece = rng.choice((1, 7, 100, 4096, 70000))
    if max_piece == 1 and len(pair.old) + len(pair.new) > 100000:
        max_piece = 97
    sig = lc.wrapper_signature(STOCK, pair.old, pair.block_len)
    assert _drive_cycle(DUPCORE.new_sigmaker(pair.block_len), pair.old, rng, max_piece) == sig

    delta = lc.wrapper_delta(STOCK, sig, pair.new)
    if pair.old:  # slack deltas depend on chunking by design (docs/formats.md §2.6)
        assert _drive_cycle(DUPCORE.new_deltamaker(sig), pair.new, rng, max_piece) == delta

    basis = tmp_path / "old"
    basis.write_bytes(pair.old)
    with open(basis, "rb") as f:
        assert _drive_cycle(DUPCORE.new_patchmaker(f), delta, rng, max_piece) == pair.new


@pytest.mark.parametrize("seed", range(10))
def test_likefile_random_read_sizes(seed, tmp_path):
    """``LikeFile.read(n)`` returns exactly n bytes until EOF, for delta and patch output."""
    rng = random.Random(seed)
    pair = lc.make_pair("long_literal", seed)
    sig = lc.wrapper_signature(DUPCORE, pair.old, pair.block_len)
    expect = lc.wrapper_delta(STOCK, sig, pair.new)
    basis = tmp_path / "old"
    basis.write_bytes(pair.old)
    with open(basis, "rb") as f, lc.backend(DUPCORE):
        readers = (
            (lc.dlibrsync.DeltaFile(sig, lc.io.BytesIO(pair.new)), expect),
            (lc.dlibrsync.PatchedFile(f, lc.io.BytesIO(expect)), pair.new),
        )
        for lf, want in readers:
            got = []
            while True:
                n = rng.choice((1, 10, 4096, 65536, 100000))
                buf = lf.read(n)
                got.append(buf)
                if len(buf) < n:
                    break
            assert lf.read(10) == b""
            assert b"".join(got) == want


def test_whole_buffer_methods_match_wrappers(tmp_path):
    """``update``/``finish``/``run`` give the bytes of the cycle()-based wrappers."""
    for cat, idx in lc.case_ids()[::25]:
        pair = lc.make_pair(cat, idx)
        sm = DUPCORE.new_sigmaker(pair.block_len)
        sig = b"".join(sm.update(pair.old[o:o + 1 << 20]) for o in range(0, len(pair.old), 1 << 20))
        sig += sm.finish()
        assert sig == lc.wrapper_signature(STOCK, pair.old, pair.block_len), pair.name
        dm = DUPCORE.new_deltamaker(sig)
        delta = b"".join(dm.update(pair.new[o:o + 1 << 20]) for o in range(0, len(pair.new), 1 << 20))
        delta += dm.finish()
        assert delta == lc.wrapper_delta(STOCK, sig, pair.new), pair.name
        basis = tmp_path / "old"
        basis.write_bytes(pair.old)
        assert lc.whole_patch(DUPCORE, basis, delta) == pair.new, pair.name
        assert lc.whole_patch(DUPCORE, basis, delta, limit=777) == pair.new, pair.name


# --------------------------------------------------------------------------- rdiff (2.3.2)


def _rdiff_batch(tmp_path, jobs):
    """Run many rdiff command lines in one shell; return each command's exit status."""
    script = tmp_path / "batch.sh"
    lines = [f'{cmd} 2>/dev/null; echo $? >> "{tmp_path}/status"' for cmd in jobs]
    script.write_text("\n".join(lines) + "\n")
    status = tmp_path / "status"
    if status.exists():
        status.unlink()
    subprocess.run(["sh", str(script)], check=True, timeout=600)
    return [int(x) for x in status.read_text().split()]


def _strong_cases(strong_len):
    rng = random.Random(f"strong-{strong_len}")
    cats = [c for c in lc.GENERATORS if c != "slack"]
    out = []
    for i in range(24):
        pair = lc.make_pair(rng.choice(cats), rng.randrange(60))
        if not pair.old or len(pair.old) + len(pair.new) > 600000:
            continue
        out.append(pair)
    # weak-sum twins make short strong sums produce false matches
    out.append(lc.make_pair("weak_collision", strong_len))
    out.append(lc.make_pair("low_entropy", strong_len))
    return out


@pytest.mark.skipif(not HAVE_RDIFF, reason="rdiff not installed")
@pytest.mark.parametrize("strong_len", range(17))
def test_rdiff_strong_lengths(strong_len, tmp_path):
    """Signatures of ``rdiff signature -S N``: dupcore's 2.3.2 delta equals ``rdiff delta`` and
    ``rdiff patch`` applies dupcore's delta as the reference patcher does."""
    pairs = _strong_cases(strong_len)
    jobs = []
    for k, p in enumerate(pairs):
        (tmp_path / f"{k}.old").write_bytes(p.old)
        (tmp_path / f"{k}.new").write_bytes(p.new)
        jobs.append(
            f"{RDIFF} -H md4 -R rollsum -S {strong_len} -b {p.block_len} "
            f"signature {tmp_path}/{k}.old {tmp_path}/{k}.sig"
        )
        jobs.append(f"{RDIFF} delta {tmp_path}/{k}.sig {tmp_path}/{k}.new {tmp_path}/{k}.rdelta")
    assert all(s == 0 for s in _rdiff_batch(tmp_path, jobs))

    jobs = []
    deltas = []
    with lc.dupcore_mode("2.3.2"):
        for k, p in enumerate(pairs):
            sig = (tmp_path / f"{k}.sig").read_bytes()
            assert sig[8:12] == (strong_len or 16).to_bytes(4, "big")
            if strong_len == 0:
                sig = sig[:8] + bytes(4) + sig[12:]  # header value 0 means "16"
            dm = DUPCORE.new_deltamaker(sig)
            delta = dm.update(p.new) + dm.finish()
            deltas.append(delta)
            assert delta == (tmp_path / f"{k}.rdelta").read_bytes(), p.name
            (tmp_path / f"{k}.ddelta").write_bytes(delta)
            jobs.append(f"{RDIFF} patch {tmp_path}/{k}.old {tmp_path}/{k}.ddelta {tmp_path}/{k}.out")
    status = _rdiff_batch(tmp_path, jobs)
    for k, p in enumerate(pairs):
        try:
            want = lc.ref_patch(p.old, deltas[k])
        except lc.RefError:
            assert status[k] != 0, p.name
            continue
        assert status[k] == 0, p.name
        assert (tmp_path / f"{k}.out").read_bytes() == want, p.name
        if strong_len == 0 or strong_len >= 8:
            assert want == p.new, p.name


@pytest.mark.skipif(not HAVE_RDIFF, reason="rdiff not installed")
@pytest.mark.parametrize("chunk", range(6))
def test_rdiff_232_mode_default_strong(chunk, tmp_path):
    """Duplicity-style signatures (MD4, 8 bytes): rdiff's signature equals dupcore's, and in
    2.3.2 mode dupcore's delta equals ``rdiff delta`` byte for byte; rdiff patches it back."""
    ids = [cid for cid in lc.case_ids() if cid[0] != "slack"][chunk::20]
    # rdiff cuts slack deltas (empty basis) by its own buffer sizes: compared elsewhere
    pairs = [p for p in (lc.make_pair(*cid) for cid in ids) if p.old]
    jobs = []
    for k, p in enumerate(pairs):
        (tmp_path / f"{k}.old").write_bytes(p.old)
        (tmp_path / f"{k}.new").write_bytes(p.new)
        jobs.append(
            f"{RDIFF} -H md4 -R rollsum -S 8 -b {p.block_len} "
            f"signature {tmp_path}/{k}.old {tmp_path}/{k}.sig"
        )
        jobs.append(f"{RDIFF} delta {tmp_path}/{k}.sig {tmp_path}/{k}.new {tmp_path}/{k}.rdelta")
    assert all(s == 0 for s in _rdiff_batch(tmp_path, jobs))
    jobs = []
    with lc.dupcore_mode("2.3.2"):
        for k, p in enumerate(pairs):
            sig = lc.wrapper_signature(DUPCORE, p.old, p.block_len)
            assert sig == (tmp_path / f"{k}.sig").read_bytes(), p.name
            delta = lc.wrapper_delta(DUPCORE, sig, p.new)
            assert delta == (tmp_path / f"{k}.rdelta").read_bytes(), p.name
            (tmp_path / f"{k}.ddelta").write_bytes(delta)
            jobs.append(f"{RDIFF} patch {tmp_path}/{k}.old {tmp_path}/{k}.ddelta {tmp_path}/{k}.out")
            # and dupcore patches rdiff's delta
            assert lc.wrapper_patch(DUPCORE, tmp_path / f"{k}.old", delta) == p.new
    assert all(s == 0 for s in _rdiff_batch(tmp_path, jobs))
    for k, p in enumerate(pairs):
        assert (tmp_path / f"{k}.out").read_bytes() == p.new, p.name


@pytest.mark.skipif(not HAVE_RDIFF, reason="rdiff not installed")
def test_rdiff_232_literal_cap_spec_example(tmp_path):
    """docs/formats.md §2.3: 5000 random old, 100000 random new → 32768-byte literals in 2.3.2."""
    rng = random.Random(11)
    old, new = rng.randbytes(5000), rng.randbytes(100000)
    sig = lc.wrapper_signature(DUPCORE, old, 512)
    with lc.dupcore_mode("2.3.2"):
        d232 = lc.wrapper_delta(DUPCORE, sig, new)
    d234 = lc.wrapper_delta(DUPCORE, sig, new)
    assert [len(c[1]) for c in lc.parse_delta(d232)] == [32768, 32768, 32768, 1696]
    assert [len(c[1]) for c in lc.parse_delta(d234)] == [65533, 34467]
    assert d234 == lc.wrapper_delta(STOCK, sig, new)
    (tmp_path / "sig").write_bytes(sig)
    (tmp_path / "new").write_bytes(new)
    subprocess.run([RDIFF, "delta", tmp_path / "sig", tmp_path / "new", tmp_path / "d"], check=True)
    assert (tmp_path / "d").read_bytes() == d232


def test_live_duplicity_wrappers_match_stock(tmp_path):
    """``duplicity.librsync`` as imported here (with whatever dupcore's activation installed in
    it) gives the stock bytes too."""
    import duplicity.librsync as live

    for cat, idx in lc.case_ids()[3::20]:
        pair = lc.make_pair(cat, idx)
        gen = live.SigGenerator(pair.block_len)
        for off in range(0, len(pair.old), lc.JOB):
            gen.update(pair.old[off:off + lc.JOB])
        sig = gen.getsig()
        assert sig == lc.wrapper_signature(STOCK, pair.old, pair.block_len), pair.name
        delta = lc.likefile_read_all(live.DeltaFile(sig, lc.io.BytesIO(pair.new)))
        assert delta == lc.wrapper_delta(STOCK, sig, pair.new), pair.name
        basis = tmp_path / "old"
        basis.write_bytes(pair.old)
        with open(basis, "rb") as f:
            assert lc.likefile_read_all(live.PatchedFile(f, lc.io.BytesIO(delta))) == pair.new


class _ShortReader(io.RawIOBase):
    """A readable stream whose reads return fewer bytes than asked (pipes, growing files)."""

    def __init__(self, data, seed):
        self.data, self.pos, self.rng = data, 0, random.Random(seed)

    def readable(self):
        return True

    def read(self, n=-1):
        k = self.rng.choice((1, 1000, 40000, 65536, 100000))
        k = k if n < 0 else min(k, n)
        out = self.data[self.pos:self.pos + k]
        self.pos += len(out)
        return out


@pytest.mark.parametrize("basis", [b"", b"x" * 3000], ids=["slack", "basis"])
def test_live_deltafile_short_reads(basis):
    """With a new file whose reads come back short, the live ``duplicity.librsync.DeltaFile``
    cuts its output like duplicity's LikeFile over the stock module (slack literals follow
    LikeFile's input buffer, docs/formats.md §2.6)."""
    import duplicity.librsync as live

    new = random.Random(1).randbytes(500000)
    sig = lc.wrapper_signature(STOCK, basis, 512)
    with lc.backend(STOCK):
        want = lc.likefile_read_all(lc.dlibrsync.DeltaFile(sig, _ShortReader(new, 5)))
    got = lc.likefile_read_all(live.DeltaFile(sig, _ShortReader(new, 5)))
    assert got == want


@pytest.mark.parametrize("change", ["pages", "grown", "read_in_part"])
def test_live_delta_under_filewithsignature(change, tmp_path):
    """duplicity's ``get_delta_path`` reads a changed file through ``FileWithSignature``, which
    feeds its ``SigGenerator`` and the ``DeltaFile`` from the same reads. The live classes share
    the block sums between the two when the blocks agree; the delta and the signature handed
    to the callback are stock's bytes whether they share or not, and whether the delta reads
    the file to its end or ``close()`` reads the rest."""
    import duplicity.librsync as live
    from duplicity import diffdir

    rng = random.Random(change)
    old = rng.randbytes(3_000_000)
    new = bytearray(old)
    for pos in range(5_000, len(new), 400_009):
        new[pos:pos + 4096] = rng.randbytes(4096)
    if change == "grown":
        new += rng.randbytes(2_500_000)
    new = bytes(new)
    (tmp_path / "new").write_bytes(new)
    sig = lc.wrapper_signature(STOCK, old, diffdir.get_block_size(len(old)))
    got = []
    with open(tmp_path / "new", "rb") as raw:
        wrapper = diffdir.FileWithSignature(diffdir.FileWithReadCounter(raw), got.append,
                                            len(new))
        delta_file = live.DeltaFile(sig, wrapper)
        shares = getattr(wrapper.sig_gen, "_shared", None) is not None
        assert shares == (change != "grown")
        if change == "read_in_part":
            part = delta_file.read(100_000)
            delta_file.close()
            assert lc.wrapper_delta(STOCK, sig, new).startswith(part)
        else:
            delta = lc.likefile_read_all(delta_file)
            delta_file.close()
            assert delta == lc.wrapper_delta(STOCK, sig, new)
    assert got == [lc.wrapper_signature(STOCK, new, diffdir.get_block_size(len(new)))]
