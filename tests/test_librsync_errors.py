"""Robustness of dupcore's ``_librsync``: mutated, truncated and garbage signatures and deltas
raise ``librsyncError`` (never crash, hang or give wrong bytes), docs/formats.md §1.7 and §3.

Outcomes are judged by the small reference model in ``librsync_cases``; valid mutated
signatures are also compared with the stock module where that is safe (header unchanged).
"""

import faulthandler
import io
import random
import re

import duplicity.librsync as live
import librsync_cases as lc
import pytest

STOCK = lc.stock_module()
DUPCORE = lc.dupcore_module()
ERROR = DUPCORE.librsyncError
CODE = re.compile(r"librsync error (\d+)")
OTHER_MAGICS = (0x72730137, 0x72730146, 0x72730147)


@pytest.fixture(autouse=True)
def _hang_guard():
    """Turn a hang into a failed run with a traceback instead of a stuck CI job."""
    faulthandler.dump_traceback_later(240, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _code(exc):
    m = CODE.search(str(exc))
    return int(m.group(1)) if m else None


class Tally:
    """Counts checked cases and collects the first few failures with reproducers."""

    def __init__(self):
        self.count = 0
        self.failures = []

    def fail(self, what, data):
        """Record a failure; ``data`` is the offending stream (shown in hex, shortened)."""
        if len(self.failures) < 8:
            self.failures.append(f"{what}: {data[:80].hex()}{'...' if len(data) > 80 else ''}")

    def verify(self, minimum):
        """Assert that no case failed and that at least ``minimum`` cases ran."""
        assert not self.failures, "\n".join(self.failures)
        assert self.count >= minimum, self.count


# --------------------------------------------------------------------------- signatures


def _dupcore_delta(sig, new):
    dm = DUPCORE.new_deltamaker(sig)
    return dm.update(new) + dm.finish()


def check_signature(tally, sig, new, header_intact):
    """One signature case: the expected outcome comes from the reference validator.

    Rejected → ``librsyncError`` with librsync's code, directly and through both wrappers.
    Accepted → the delta equals stock's (when the header is the original one) or the model's.
    """
    tally.count += 1
    try:
        lc.ref_parse_signature(sig)
        want_error = None
    except lc.RefError as e:
        want_error = e.code
    try:
        got = _dupcore_delta(sig, new)
        got_error = None
    except ERROR as e:
        got, got_error = None, _code(e)
    except BaseException as e:  # noqa: BLE001 - a panic or any other exception is a failure
        tally.fail(f"new_deltamaker raised {type(e).__name__}: {e}", sig)
        return
    if want_error is not None:
        magic = int.from_bytes(sig[:4], "big") if len(sig) >= 4 else None
        allowed = {want_error, 105} if magic in OTHER_MAGICS else {want_error}
        if got_error not in allowed:
            tally.fail(f"expected librsync error {want_error}, got {got_error}", sig)
            return
        with lc.backend(DUPCORE):
            try:
                lc.dlibrsync.DeltaFile(sig, io.BytesIO(new))
                tally.fail("DeltaFile accepted a bad signature", sig)
            except lc.dlibrsync.librsyncError:
                pass
        try:
            live.DeltaFile(sig, io.BytesIO(new)).read()
            tally.fail("duplicity.librsync.DeltaFile accepted a bad signature", sig)
        except live.librsyncError:
            pass
        return
    if got_error is not None:
        tally.fail(f"valid signature rejected with {got_error}", sig)
        return
    strong_field = int.from_bytes(sig[8:12], "big")
    if header_intact and 1 <= strong_field <= 16:
        body = sig[12:]
        rec = 4 + strong_field
        whole = sig[: 12 + len(body) // rec * rec]
        want = lc.wrapper_delta(STOCK, whole, new)
    else:
        want = lc.ref_delta(sig, new)
    if got != want:
        tally.fail("delta differs from the reference", sig)


def _base_signatures(rng):
    """Small valid signatures (few blocks) of several shapes, with a matching new file each."""
    bases = []
    for k in range(12):
        block = rng.choice((16, 64, 100, 512))
        old = rng.randbytes(rng.randrange(1, 6 * block))
        new = lc._insert_delete(rng, old, 3)[:4000]
        strong = rng.choice((8, 8, 1, 2, 4, 16, 0))
        sig = lc.ref_signature(old, block, strong or 16)
        if strong == 0:
            sig = sig[:8] + bytes(4) + sig[12:]
        bases.append((sig, new))
        if k % 3 == 0:  # duplicated records: lowest index must win
            bases.append((sig + sig[12:], new))
    bases.append((lc.ref_signature(b"", 512), b"slack input" * 10))
    return bases


def _mutations_of(sig, rng):
    """Yield (mutated signature, header_intact) variants of ``sig``."""
    n = len(sig)
    for cut in range(n):
        yield sig[:cut], cut >= 12
    for _ in range(60):
        buf = bytearray(sig)
        if n > 12:
            for _ in range(rng.randrange(1, 4)):
                buf[rng.randrange(12, n)] ^= rng.randrange(1, 256)
        yield bytes(buf), True
    for _ in range(40):
        buf = bytearray(sig)
        buf[rng.randrange(12)] ^= 1 << rng.randrange(8)
        yield bytes(buf), False
    header_words = (0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 512, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
    for field in (4, 8):
        for v in header_words:
            yield sig[:field] + v.to_bytes(4, "big") + sig[field + 4:], False
    for magic in (0, 0x72730236, *OTHER_MAGICS, 0x36017372, 0xFFFFFFFF):
        yield magic.to_bytes(4, "big") + sig[4:], False
    for _ in range(10):
        at = rng.randrange(12, n + 1)
        yield sig[:at] + rng.randbytes(rng.randrange(1, 9)) + sig[at:], True
        at = rng.randrange(n)
        yield sig[:at] + sig[at + rng.randrange(1, 6):], at >= 12


def test_mutated_signatures():
    """Truncated and mutated signatures: error or exactly the reference delta."""
    rng = random.Random(1)
    tally = Tally()
    for sig, new in _base_signatures(rng):
        for mutated, intact in _mutations_of(sig, rng):
            check_signature(tally, mutated, new, intact)
    tally.verify(3000)


def test_garbage_signatures():
    """Random bytes, with and without a valid MD4 magic: error or the reference delta."""
    rng = random.Random(2)
    tally = Tally()
    new = rng.randbytes(3000)
    magic = lc.SIG_MAGIC.to_bytes(4, "big")
    for _ in range(1500):
        junk = rng.randbytes(rng.randrange(0, 120))
        check_signature(tally, junk, new, False)
        header = magic + rng.randrange(1, 2000).to_bytes(4, "big") + rng.randrange(0, 40).to_bytes(4, "big")
        check_signature(tally, header + junk, new, False)
    for n in range(12):
        check_signature(tally, bytes(n), new, False)
        check_signature(tally, magic[: min(n, 4)] + bytes(max(0, n - 4)), new, False)
    tally.verify(3000)


def test_large_block_len_signature_small_file():
    """A signature whose block length dwarfs the input is valid and cheap (no huge buffers)."""
    for block in (1 << 20, 0x7FFFFFFF, 0xFFFFFFFF):
        sig = lc.SIG_MAGIC.to_bytes(4, "big") + block.to_bytes(4, "big") + (8).to_bytes(4, "big")
        sig += lc.ref_signature(b"tail", 4)[12:]
        new = b"xyz" * 100 + b"tail"
        assert _dupcore_delta(sig, new) == lc.ref_delta(sig, new)


# --------------------------------------------------------------------------- deltas


def _patch_outcome(basis_path, delta, how):
    """Run dupcore's patch one of three ways; return (output, None) or (None, error code)."""
    try:
        if how == "run":
            return lc.whole_patch(DUPCORE, basis_path, delta, limit=1 << 16), None
        if how == "cycle":
            with open(basis_path, "rb") as f:
                job = DUPCORE.new_patchmaker(f)
                out, buf, stalls = [], delta, 0
                while True:
                    done, used, chunk = job.cycle(buf)
                    out.append(chunk)
                    buf = buf[used:]
                    if done:
                        return b"".join(out), None
                    stalls = stalls + 1 if not used and not chunk else 0
                    assert stalls < 3, "patch job makes no progress"
        with lc.backend(DUPCORE):
            try:
                return lc.wrapper_patch(DUPCORE, basis_path, delta), None
            except lc.dlibrsync.librsyncError as e:
                return None, _code(e)
    except ERROR as e:
        return None, _code(e)


def check_delta(tally, basis, basis_path, delta, how="run"):
    """One delta case: dupcore's patch equals the model's output, or both reject it alike."""
    tally.count += 1
    try:
        want, want_error = lc.ref_patch(basis, delta), None
    except lc.RefError as e:
        want, want_error = None, e.code
    try:
        got, got_error = _patch_outcome(basis_path, delta, how)
    except BaseException as e:  # noqa: BLE001 - a panic or any other exception is a failure
        tally.fail(f"patch ({how}) raised {type(e).__name__}: {e}", delta)
        return
    if want_error is not None:
        if got_error != want_error:
            tally.fail(f"patch ({how}): expected error {want_error}, got {got_error}", delta)
    elif got_error is not None:
        tally.fail(f"patch ({how}) rejected a valid delta with {got_error}", delta)
    elif got != want:
        tally.fail(f"patch ({how}) output differs from the reference", delta)


def _handmade_deltas(rng, basis_len):
    """Deltas using every command encoding, including those librsync never emits."""
    magic = lc.DELTA_MAGIC.to_bytes(4, "big")
    deltas = []
    for width in (1, 2, 4, 8):
        cmds = [lc.encode_literal(rng.randbytes(rng.randrange(1, 200)), width)]
        for wl in (1, 2, 4, 8):
            pos = rng.randrange(min(basis_len - 300, 256**width))
            cmds.append(lc.encode_copy(pos, rng.randrange(1, 250), width, wl))
        deltas.append(magic + b"".join(cmds) + b"\0")
    immediate = b"".join(lc.encode_literal(rng.randbytes(n)) for n in range(1, 65))
    deltas.append(magic + immediate + b"\0")
    backward = lc.encode_copy(1000, 500) + lc.encode_copy(0, 1500) + lc.encode_copy(900, 700)
    deltas.append(magic + backward + lc.encode_literal(b"x" * 300) + b"\0")
    deltas.append(magic + b"\0")
    deltas.append(magic + lc.encode_copy(basis_len - 10, 10) + b"\0" + b"trailing garbage")
    return deltas


def _real_deltas(rng, old):
    """Deltas produced by the stock module for edits of ``old``."""
    out = []
    for block in (64, 512, 2048):
        sig = lc.wrapper_signature(STOCK, old, block)
        for _ in range(3):
            new = lc._insert_delete(rng, old, rng.randrange(1, 6))[: rng.randrange(1, 20000)]
            out.append(lc.wrapper_delta(STOCK, sig, new))
    return out


def _delta_mutations(delta, rng):
    """Yield mutated, truncated and extended variants of ``delta``."""
    n = len(delta)
    cuts = range(n + 1) if n <= 400 else sorted(rng.sample(range(n + 1), 150))
    for cut in cuts:
        yield delta[:cut]
    special = (0x00, 0x01, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x48, 0x51, 0x54, 0x55, 0x80, 0xFF)
    for _ in range(120):
        buf = bytearray(delta)
        for _ in range(rng.randrange(1, 3)):
            at = rng.randrange(n)
            buf[at] = rng.choice(special) if rng.random() < 0.4 else buf[at] ^ rng.randrange(1, 256)
        yield bytes(buf)
    for _ in range(15):
        at = rng.randrange(4, n + 1)
        yield delta[:at] + rng.randbytes(rng.randrange(1, 12)) + delta[at:]
        at = rng.randrange(n)
        yield delta[:at] + delta[at + rng.randrange(1, 10):]
    yield delta + rng.randbytes(50)
    yield delta + delta
    yield delta[:-1] + bytes([0x45, 0, 1]) + b"\0"


def test_mutated_deltas(tmp_path):
    """Mutated, truncated, extended deltas: exactly the model's output or its error."""
    rng = random.Random(3)
    tally = Tally()
    for k in range(3):
        basis = rng.randbytes(rng.choice((3000, 70000, 300000)))
        path = tmp_path / f"basis{k}"
        path.write_bytes(basis)
        deltas = _handmade_deltas(rng, len(basis)) + _real_deltas(rng, basis[:30000])
        for d in deltas:
            for i, mutated in enumerate(_delta_mutations(d, rng)):
                how = ("run", "run", "run", "cycle", "wrapper")[i % 5]
                check_delta(tally, basis, path, mutated, how)
    tally.verify(5000)


def test_garbage_deltas(tmp_path):
    """Random bytes after (or instead of) the delta magic: the model's output or its error."""
    rng = random.Random(4)
    tally = Tally()
    basis = rng.randbytes(5000)
    path = tmp_path / "basis"
    path.write_bytes(basis)
    magic = lc.DELTA_MAGIC.to_bytes(4, "big")
    for i in range(1200):
        junk = rng.randbytes(rng.randrange(0, 64))
        check_delta(tally, basis, path, junk, "run")
        check_delta(tally, basis, path, magic + junk, ("run", "cycle", "wrapper")[i % 3])
    tally.verify(2000)


# --------------------------------------------------------------------------- specific contracts


def test_patchmaker_needs_a_file_descriptor():
    """``new_patchmaker`` on an object without ``fileno`` raises TypeError (as the C module)."""
    with pytest.raises(TypeError):
        DUPCORE.new_patchmaker(io.BytesIO(b"basis"))
    with pytest.raises(TypeError):
        DUPCORE.new_patchmaker(object())
    with pytest.raises(TypeError), lc.backend(DUPCORE):
        lc.dlibrsync.PatchedFile(object(), io.BytesIO(b""))


def test_cycle_after_done_with_data(tmp_path):
    """Feeding data to a finished job raises librsyncError for all three job kinds."""
    sm = DUPCORE.new_sigmaker(512)
    assert sm.cycle(b"abc")[0] == 0
    assert sm.cycle(b"")[0] == 1
    with pytest.raises(ERROR):
        sm.cycle(b"more")

    dm = DUPCORE.new_deltamaker(lc.wrapper_signature(STOCK, b"abc", 512))
    dm.cycle(b"zzabc")
    assert dm.cycle(b"")[0] == 1
    with pytest.raises(ERROR):
        dm.cycle(b"more")

    basis = tmp_path / "b"
    basis.write_bytes(b"abc")
    with open(basis, "rb") as f:
        pm = DUPCORE.new_patchmaker(f)
        done, _used, out = pm.cycle(bytes.fromhex("727302364500030000"))
        assert (done, out) == (1, b"abc")
        with pytest.raises(ERROR):
            pm.cycle(b"\x01x\x00")


def test_copy_past_basis_end(tmp_path):
    """A COPY that starts inside the basis and runs past its end is an error (103)."""
    basis = tmp_path / "b"
    basis.write_bytes(b"0123456789")
    for where, length in ((5, 6), (0, 11), (10, 1), (11, 1), (1 << 40, 5)):
        delta = lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(where, length) + b"\0"
        with pytest.raises(ERROR, match="librsync error 103"):
            lc.whole_patch(DUPCORE, basis, delta)
        with pytest.raises(lc.dlibrsync.librsyncError):
            lc.wrapper_patch(DUPCORE, basis, delta)
        with open(basis, "rb") as f, pytest.raises(live.librsyncError):
            lc.likefile_read_all(live.PatchedFile(f, io.BytesIO(delta)))


def test_bytes_after_end_are_ignored(tmp_path):
    """Anything after the END command is never applied."""
    basis = tmp_path / "b"
    basis.write_bytes(b"0123456789")
    delta = lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(2, 3) + b"\0"
    for tail in (b"", b"\0", b"\x05hello\0", b"\xff" * 100, bytes(70000)):
        assert lc.whole_patch(DUPCORE, basis, delta + tail) == b"234"
        assert lc.wrapper_patch(DUPCORE, basis, delta + tail) == b"234"
        with open(basis, "rb") as f:
            done, used, out = DUPCORE.new_patchmaker(f).cycle(delta + tail)
            assert (done, out) == (1, b"234")
            assert used <= len(delta + tail)


def test_spec_signature_rejections():
    """docs/formats.md §1.7 examples that crash the stock module raise librsyncError here."""
    header = lc.SIG_MAGIC.to_bytes(4, "big")
    cases = {
        b"": 103,
        header + (512).to_bytes(4, "big"): 103,
        bytes.fromhex("12345678000002000000000803040183a448017aaf21d852"): 104,
        header + bytes(4) + (8).to_bytes(4, "big"): 106,
        header + (512).to_bytes(4, "big") + (17).to_bytes(4, "big"): 108,
        header + (512).to_bytes(4, "big") + (33).to_bytes(4, "big"): 106,
        bytes.fromhex("727301360000020000000008030401") + b"\xa4": 103,
    }
    for sig, code in cases.items():
        with pytest.raises(ERROR, match=f"librsync error {code}"):
            DUPCORE.new_deltamaker(sig)
    # 1..3 trailing bytes inside a weak sum are dropped silently
    ok = bytes.fromhex("72730136000002000000000803040183a448017aaf21d852")
    for extra in (b"\x01", b"\x01\x02", b"\x01\x02\x03"):
        assert _dupcore_delta(ok + extra, b"zzabc") == _dupcore_delta(ok, b"zzabc")
