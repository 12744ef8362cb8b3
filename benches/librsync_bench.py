#!/usr/bin/env python3
"""Benchmark: duplicity's stock ``_librsync`` against dupcore, on the same inputs in one run.

For signature, delta and patch it times

* stock ``_librsync`` through duplicity's own ``librsync`` wrappers (SigGenerator fed 64 KiB at
  a time like ``FileWithSignature``; ``DeltaFile.read(65536)`` and ``PatchedFile.read(65536)``
  loops like duplicity's tar writer),
* dupcore's ``_librsync`` through the same wrapper code,
* dupcore's whole-buffer methods (``update``/``finish`` in 1 MiB pieces, ``run`` with a 1 MiB
  output bound),
* Debian's ``rdiff`` command on files, for reference (librsync 2.3.2; its delta bytes differ
  from 2.3.4's by design),

and prints wall time, CPU time (all threads), MiB/s of input, and speed-ups over stock.

Input: ``--size-mib`` MiB of seeded random data as the old file; the new file is the old one
with 1 % of its bytes replaced, in 1 KiB runs at scattered places. Signature block length is
duplicity 3.2.1's ``get_block_size``.

Usage: ``python benches/librsync_bench.py [--size-mib 256] [--quick]``
"""

import argparse
import importlib.machinery
import importlib.util
import io
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import dupcore._librsync as dupcore_rs
import duplicity

JOB = 65536
PIECE = 1 << 20


def duplicity_dir():
    """Directory of the installed duplicity package."""
    return importlib.util.find_spec("duplicity").submodule_search_locations[0]


def load_stock():
    """duplicity's compiled ``_librsync``, loaded by path (dupcore's start-up hook would
    otherwise serve dupcore's module under that name)."""
    pkg = duplicity_dir()
    name = next(n for n in os.listdir(pkg) if n.startswith("_librsync.") and n.endswith(".so"))
    path = os.path.join(pkg, name)
    saved = sys.modules.get("duplicity._librsync")
    loader = importlib.machinery.ExtensionFileLoader("duplicity._librsync", path)
    spec = importlib.util.spec_from_file_location("duplicity._librsync", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    if saved is not None:
        sys.modules["duplicity._librsync"] = saved
    else:
        sys.modules.pop("duplicity._librsync", None)
    return mod


def load_wrappers():
    """A private copy of duplicity's ``librsync.py``, whose ``_librsync`` global we can swap."""
    path = os.path.join(duplicity_dir(), "librsync.py")
    spec = importlib.util.spec_from_file_location(f"{duplicity.__name__}._bench_librsync", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


WRAP = load_wrappers()


def get_block_size(file_len):
    """duplicity 3.2.1's signature block length."""
    return ((max(1, math.isqrt(file_len)) + 511) // 512) * 512


def make_inputs(size, seed=20240601):
    """Seeded random old file and a copy with 1 % of the bytes changed in 1 KiB runs."""
    rng = random.Random(seed)
    step = 16 << 20  # randbytes takes at most 2**31 bits at once
    old = b"".join(rng.randbytes(min(step, size - off)) for off in range(0, size, step))
    new = bytearray(old)
    run = 1024
    for _ in range(max(1, size // 100 // run)):
        at = rng.randrange(0, size - run)
        new[at:at + run] = rng.randbytes(run)
    return old, bytes(new)


class Timer:
    """Wall and CPU time (this process, all threads, plus waited-for children)."""

    def __enter__(self):
        self.w0 = time.perf_counter()
        self.c0 = time.process_time()
        self.k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall = time.perf_counter() - self.w0
        self.cpu = (time.process_time() - self.c0) + (k1.ru_utime - self.k0.ru_utime) + (
            k1.ru_stime - self.k0.ru_stime
        )


def wrapper_sig(mod, data, block):
    """SigGenerator fed 64 KiB at a time."""
    WRAP._librsync = mod
    gen = WRAP.SigGenerator(block)
    for off in range(0, len(data), JOB):
        gen.update(data[off:off + JOB])
    return gen.getsig()


def read_all(likefile):
    """``read(65536)`` until EOF, as duplicity's tar writer does."""
    parts = []
    while True:
        buf = likefile.read(JOB)
        if not buf:
            break
        parts.append(buf)
    return b"".join(parts)


def wrapper_delta(mod, sig, new):
    """DeltaFile over an in-memory new file."""
    WRAP._librsync = mod
    return read_all(WRAP.DeltaFile(sig, io.BytesIO(new)))


def wrapper_patch(mod, basis_path, delta):
    """PatchedFile over the basis file on disk."""
    WRAP._librsync = mod
    with open(basis_path, "rb") as f:
        return read_all(WRAP.PatchedFile(f, io.BytesIO(delta)))


def whole_sig(data, block):
    """dupcore sigmaker.update in 1 MiB pieces, then finish."""
    job = dupcore_rs.new_sigmaker(block)
    out = [job.update(data[off:off + PIECE]) for off in range(0, len(data), PIECE)]
    out.append(job.finish())
    return b"".join(out)


def whole_delta(sig, new):
    """dupcore deltamaker.update in 1 MiB pieces, then finish."""
    job = dupcore_rs.new_deltamaker(sig)
    out = [job.update(new[off:off + PIECE]) for off in range(0, len(new), PIECE)]
    out.append(job.finish())
    return b"".join(out)


def whole_patch(basis_path, delta):
    """dupcore patchmaker.run with a 1 MiB output bound, reading the delta in place."""
    out = []
    with open(basis_path, "rb") as f:
        job = dupcore_rs.new_patchmaker(f)
        pos = 0
        while True:
            done, used, chunk = job.run(delta, PIECE, pos)
            out.append(chunk)
            pos += used
            if done:
                return b"".join(out)


def rdiff(*args):
    """Run Debian's rdiff."""
    subprocess.run(["rdiff", *map(str, args)], check=True)


def main():
    """Parse options, run every measurement, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=256, help="old/new file size (default 256)")
    ap.add_argument("--quick", action="store_true", help="16 MiB, for a smoke run")
    ap.add_argument("--no-rdiff", action="store_true", help="skip the rdiff reference timings")
    opts = ap.parse_args()
    size = (16 if opts.quick else opts.size_mib) << 20
    mib = size / (1 << 20)
    stock = load_stock()
    have_rdiff = shutil.which("rdiff") is not None and not opts.no_rdiff

    print(f"duplicity {duplicity.__version__}, stock {stock.get_version()}, "
          f"dupcore {dupcore_rs.get_version()}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    old, new = make_inputs(size)
    block = get_block_size(size)
    print(f"input: {mib:.0f} MiB old, new = old with 1 % of bytes changed in 1 KiB runs; "
          f"block length {block}")

    results = {}
    tmp = tempfile.mkdtemp(prefix="librsync-bench-")
    try:
        old_path = os.path.join(tmp, "old")
        new_path = os.path.join(tmp, "new")
        with open(old_path, "wb") as f:
            f.write(old)
        with open(new_path, "wb") as f:
            f.write(new)

        def measure(op, impl, fn):
            with Timer() as t:
                value = fn()
            results[(op, impl)] = t
            return value

        sig = measure("signature", "stock wrappers", lambda: wrapper_sig(stock, old, block))
        sig_d = measure("signature", "dupcore wrappers", lambda: wrapper_sig(dupcore_rs, old, block))
        sig_w = measure("signature", "dupcore update/finish", lambda: whole_sig(old, block))
        assert sig == sig_d == sig_w, "signatures differ"

        delta = measure("delta", "stock wrappers", lambda: wrapper_delta(stock, sig, new))
        delta_d = measure("delta", "dupcore wrappers", lambda: wrapper_delta(dupcore_rs, sig, new))
        delta_w = measure("delta", "dupcore update/finish", lambda: whole_delta(sig, new))
        assert delta == delta_d == delta_w, "deltas differ"

        out = measure("patch", "stock wrappers", lambda: wrapper_patch(stock, old_path, delta))
        assert out == new
        del out
        out = measure("patch", "dupcore wrappers", lambda: wrapper_patch(dupcore_rs, old_path, delta))
        assert out == new
        del out
        out = measure("patch", "dupcore run", lambda: whole_patch(old_path, delta))
        assert out == new
        del out

        if have_rdiff:
            sig_path, delta_path, out_path = (os.path.join(tmp, n) for n in ("sig", "delta", "out"))
            measure("signature", "rdiff 2.3.2 (CLI)",
                    lambda: rdiff("-H", "md4", "-R", "rollsum", "-S", "8", "-b", block,
                                  "signature", old_path, sig_path))
            measure("delta", "rdiff 2.3.2 (CLI)", lambda: rdiff("delta", sig_path, new_path, delta_path))
            measure("patch", "rdiff 2.3.2 (CLI)", lambda: rdiff("patch", old_path, delta_path, out_path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"signature {len(sig)} bytes; delta {len(delta)} bytes (stock and dupcore identical)")
    print()
    head = f"{'operation':<10} {'implementation':<24} {'wall s':>8} {'CPU s':>8} {'MiB/s':>9} {'× stock':>8}"
    print(head)
    print("-" * len(head))
    for op in ("signature", "delta", "patch"):
        base = results[(op, "stock wrappers")].wall
        for (o, impl), t in results.items():
            if o != op:
                continue
            print(f"{op:<10} {impl:<24} {t.wall:8.3f} {t.cpu:8.3f} {mib / t.wall:9.1f} {base / t.wall:7.2f}×")
    print()
    print("ratios dupcore/stock (speed-up, wall time):")
    for op in ("signature", "delta", "patch"):
        base = results[(op, "stock wrappers")].wall
        best = min(t.wall for (o, impl), t in results.items() if o == op and impl.startswith("dupcore"))
        via = results[(op, "dupcore wrappers")].wall
        print(f"  {op:<10} through duplicity's wrappers {base / via:5.2f}×, best dupcore path {base / best:5.2f}×")


if __name__ == "__main__":
    main()
