"""API contract of dupcore's ``_librsync`` as a drop-in for duplicity's C module
(docs/formats.md §7.1–7.2), checked side by side with the stock module where it is safe."""

import io
import pickle
import random
import tempfile
import threading

import duplicity.librsync as live
import librsync_cases as lc
import pytest

STOCK = lc.stock_module()
DUPCORE = lc.dupcore_module()
SIG_ABC = bytes.fromhex("72730136000002000000000803040183a448017aaf21d852")  # docs/formats.md §1.4


def _basis(tmp_path, data):
    path = tmp_path / "basis"
    path.write_bytes(data)
    return path


def test_constants_match_stock():
    """Module constants have the stock values."""
    assert DUPCORE.RS_JOB_BLOCKSIZE == STOCK.RS_JOB_BLOCKSIZE == 65536
    assert DUPCORE.RS_DEFAULT_BLOCK_LEN == STOCK.RS_DEFAULT_BLOCK_LEN == 2048
    assert issubclass(DUPCORE.librsyncError, Exception)


def test_get_version_and_modes():
    """``get_version`` names the reproduced librsync; the mode switch is validated."""
    with lc.dupcore_mode("2.3.4"):
        assert DUPCORE.librsync_mode() == "2.3.4"
        assert DUPCORE.get_version().startswith("librsync 2.3.4")
    with lc.dupcore_mode("2.3.2"):
        assert DUPCORE.librsync_mode() == "2.3.2"
        assert DUPCORE.get_version().startswith("librsync 2.3.2")
    for bad in ("2.3.3", "", "latest"):
        with pytest.raises(ValueError):
            DUPCORE.set_librsync_mode(bad)
    assert live.get_version() == live._librsync.get_version()


def test_job_type_names_match_stock(tmp_path):
    """Job objects have the stock type names (docs/formats.md §7.1).

    Only sigmaker and deltamaker are compared live: touching the stock patchmaker's type
    (``type(job).__name__``, ``repr(job)``) crashes the stock module.
    """
    assert type(DUPCORE.new_sigmaker(512)).__name__ == type(STOCK.new_sigmaker(512)).__name__
    assert type(DUPCORE.new_deltamaker(SIG_ABC)).__name__ == type(STOCK.new_deltamaker(SIG_ABC)).__name__
    with open(_basis(tmp_path, b"abc"), "rb") as f:
        assert type(DUPCORE.new_patchmaker(f)).__name__ == "patchmaker"


def test_jobs_cannot_be_pickled(tmp_path):
    """Like the C module's objects, jobs do not pickle."""
    for job in (DUPCORE.new_sigmaker(512), DUPCORE.new_deltamaker(SIG_ABC)):
        with pytest.raises((TypeError, pickle.PicklingError)):
            pickle.dumps(job)


def test_cycle_result_types():
    """``cycle`` returns ``(int, int, bytes)``; signature and delta jobs take all input."""
    for job in (DUPCORE.new_sigmaker(512), DUPCORE.new_deltamaker(SIG_ABC)):
        done, used, out = job.cycle(b"hello world")
        assert type(done) is int and done == 0
        assert used == 11
        assert type(out) is bytes
        done, used, out = job.cycle(b"")
        assert (type(done), done, used) == (int, 1, 0)


def test_non_bytes_input_rejected_like_stock():
    """Stock uses ``y#``: bytearray and memoryview are TypeErrors there, and here too."""
    for mod in (STOCK, DUPCORE):
        for conv in (bytearray, memoryview):
            with pytest.raises(TypeError):
                mod.new_sigmaker(512).cycle(conv(b"abc"))
            with pytest.raises(TypeError):
                mod.new_deltamaker(conv(SIG_ABC))


def test_spec_examples():
    """docs/formats.md §1.4 and §2.3 byte examples, through both modules."""
    for mod in (STOCK, DUPCORE):
        assert lc.wrapper_signature(mod, b"abc", 512) == SIG_ABC
        assert lc.wrapper_signature(mod, b"", 512) == bytes.fromhex("727301360000020000000008")
        assert lc.wrapper_delta(mod, SIG_ABC, b"zzabc") == bytes.fromhex("72730236027a7a45000300")
        assert lc.wrapper_delta(mod, SIG_ABC, b"xxabcyy") == bytes.fromhex("72730236077878616263797900")
        assert lc.wrapper_delta(mod, SIG_ABC, b"") == bytes.fromhex("7273023600")


def test_slack_literal_per_cycle_call():
    """With an empty signature each ``cycle`` call's input becomes one literal, as in stock."""
    empty_sig = bytes.fromhex("727301360000020000000008")
    rng = random.Random(5)
    pieces = [rng.randbytes(n) for n in (100, 50, 70000, 1, 65536)]
    outs = []
    for mod in (STOCK, DUPCORE):
        job = mod.new_deltamaker(empty_sig)
        out = b""
        for p in pieces:
            inbuf = p
            while inbuf:
                _, used, chunk = job.cycle(inbuf)
                out += chunk
                inbuf = inbuf[used:]
        while True:
            done, _, chunk = job.cycle(b"")
            out += chunk
            if done:
                break
        outs.append(out)
    assert outs[0] == outs[1]
    assert [c[1] for c in lc.parse_delta(outs[1])] == pieces


def test_patch_cycle_output_bounded_and_resumable(tmp_path):
    """A patch ``cycle`` returns at most 64 KiB and may leave input for the next call."""
    rng = random.Random(6)
    old = rng.randbytes(300000)
    path = _basis(tmp_path, old)
    delta = lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(0, 300000)
    delta += lc.encode_literal(rng.randbytes(200000)) + lc.encode_copy(5, 100) + b"\0"
    want = lc.ref_patch(old, delta)
    with open(path, "rb") as f:
        job = DUPCORE.new_patchmaker(f)
        out, buf = [], delta
        while True:
            done, used, chunk = job.cycle(buf)
            assert len(chunk) <= 65536
            out.append(chunk)
            buf = buf[used:]
            if done:
                break
    assert b"".join(out) == want


def test_patchmaker_run_limit(tmp_path):
    """``run`` honours its output bound; a zero bound is rejected."""
    path = _basis(tmp_path, b"0123456789" * 1000)
    delta = lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(0, 10000) + b"\0"
    with open(path, "rb") as f:
        job = DUPCORE.new_patchmaker(f)
        with pytest.raises(ValueError):
            job.run(delta, 0)
        done, _used, out = job.run(delta, 3000)
        assert not done and len(out) <= 3000
    for limit in (1, 999, 4096, 1 << 20):
        assert lc.whole_patch(DUPCORE, path, delta, limit) == b"0123456789" * 1000


def test_patchmaker_survives_closing_the_file(tmp_path):
    """The job reads through its own duplicate descriptor, as the C module's ``dup``."""
    path = _basis(tmp_path, b"abcdef")
    f = open(path, "rb")  # noqa: SIM115 - closed on purpose before the job runs
    job = DUPCORE.new_patchmaker(f)
    f.close()
    done, _, out = job.cycle(lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(1, 4) + b"\0")
    assert (done, out) == (1, b"bcde")


def test_patchedfile_uses_file_attribute(tmp_path):
    """``PatchedFile`` falls back to ``basis.file`` (TemporaryFile wrappers), with dupcore."""

    class Wrapper:
        def __init__(self, f):
            self.file = f

    with tempfile.TemporaryFile() as t:
        t.write(b"hello basis")
        t.flush()
        delta = lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(6, 5) + b"\0"
        with lc.backend(DUPCORE):
            pf = lc.dlibrsync.PatchedFile(Wrapper(t), io.BytesIO(delta))
            assert lc.likefile_read_all(pf) == b"basis"


def test_patchmaker_accepts_any_fileno_object(tmp_path):
    """Any object with a working ``fileno()`` is a valid basis, as with ``PyObject_AsFileDescriptor``."""
    path = _basis(tmp_path, b"xyz")

    class FdOnly:
        def __init__(self, fd):
            self.fd = fd

        def fileno(self):
            return self.fd

    with open(path, "rb") as f:
        job = DUPCORE.new_patchmaker(FdOnly(f.fileno()))
        done, _, out = job.cycle(lc.DELTA_MAGIC.to_bytes(4, "big") + lc.encode_copy(0, 3) + b"\0")
        assert (done, out) == (1, b"xyz")


def test_sigmaker_bad_block_lengths():
    """A negative block length is refused with librsyncError (never a crash)."""
    with pytest.raises(DUPCORE.librsyncError):
        DUPCORE.new_sigmaker(-1)


def test_whole_buffer_methods_any_piece_size():
    """``update``/``finish`` give the same bytes for any input cut (delta: non-slack)."""
    rng = random.Random(8)
    old = rng.randbytes(200000)
    new = lc._insert_delete(rng, old, 10)
    sig = lc.wrapper_signature(STOCK, old, 1024)
    want = lc.wrapper_delta(STOCK, sig, new)
    for piece in (1, 1000, 65536, 100001, len(old)):
        if piece == 1:
            sm = DUPCORE.new_sigmaker(1024)
            got = b"".join(sm.update(old[i:i + 1]) for i in range(20000))
            got += sm.update(old[20000:]) + sm.finish()
        else:
            sm = DUPCORE.new_sigmaker(1024)
            got = b"".join(sm.update(old[i:i + piece]) for i in range(0, len(old), piece)) + sm.finish()
        assert got == sig
        dm = DUPCORE.new_deltamaker(sig)
        got = b"".join(dm.update(new[i:i + piece]) for i in range(0, len(new), piece)) + dm.finish()
        assert got == want


def test_jobs_in_threads(tmp_path):
    """Jobs in several threads at once (the GIL is released while they work) stay correct."""
    rng = random.Random(9)
    old = rng.randbytes(1 << 21)
    new = lc._edit_scattered(rng, old, 200)
    sig = lc.wrapper_signature(STOCK, old, 2048)
    want = lc.wrapper_delta(STOCK, sig, new)
    path = _basis(tmp_path, old)
    errors = []

    def work():
        try:
            for _ in range(3):
                sm = DUPCORE.new_sigmaker(2048)
                assert sm.update(old) + sm.finish() == sig
                dm = DUPCORE.new_deltamaker(sig)
                assert dm.update(new) + dm.finish() == want
                assert lc.whole_patch(DUPCORE, path, want) == new
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_live_module_error_classes():
    """Errors raised through the live ``duplicity.librsync`` are its ``librsyncError``."""
    with pytest.raises(live.librsyncError):
        live.DeltaFile(b"not a signature", io.BytesIO(b"x")).read()
    if live._librsync is DUPCORE:
        assert live._librsync.librsyncError is DUPCORE.librsyncError
