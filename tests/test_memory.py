"""Bounded memory: signature, delta and patch of a 512 MiB stream without holding it, and an
incremental at the end of a long chain next to stock's.

Each run happens in a fresh interpreter that reports its peak RSS; the data comes from a
generator-backed file object, so the only way to stay small is to stream.
"""

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest
from helpers import DUPLICITY, clean_env, run_duplicity

pytestmark = pytest.mark.slow

SIZE = 512 << 20

SCRIPT = textwrap.dedent(
    r"""
    import hashlib, json, os, resource, sys, tempfile
    from dupcore import librsync as R

    SIZE = int(sys.argv[1])

    class Stream:
        # Deterministic pseudo-random bytes; `edits` flips bytes in scattered places.
        def __init__(self, size, edits=False):
            self.size, self.pos, self.edits = size, 0, edits
        def read(self, n=-1):
            n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
            out = bytearray()
            while len(out) < n:
                block = self.pos // 4096
                piece = hashlib.sha256(block.to_bytes(8, "little")).digest() * 128
                if self.edits and block % 97 == 0:
                    piece = bytes(b ^ 0x55 for b in piece[:64]) + piece[64:]
                off = self.pos % 4096
                take = min(n - len(out), 4096 - off)
                out += piece[off:off + take]
                self.pos += take
            return bytes(out)
        def close(self):
            return None

    def rss_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    base = rss_mib()
    sig = R.SigGenerator(16384)
    src = Stream(SIZE)
    while True:
        chunk = src.read(65536)
        if not chunk:
            break
        sig.update(chunk)
    signature = sig.getsig()
    after_sig = rss_mib()

    delta = R.DeltaFile(signature, Stream(SIZE, edits=True))
    with tempfile.TemporaryFile() as dfile:
        while True:
            chunk = delta.read(65536)
            if not chunk:
                break
            dfile.write(chunk)
        delta.close()
        after_delta = rss_mib()
        dfile.seek(0)
        with tempfile.TemporaryFile() as basis:
            src = Stream(SIZE)
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                basis.write(chunk)
            basis.flush()
            basis.seek(0)
            patched = R.PatchedFile(basis, dfile)
            want, digest, total = Stream(SIZE, edits=True), hashlib.sha1(), 0
            ok = True
            while True:
                chunk = patched.read(65536)
                if not chunk:
                    break
                ok = ok and chunk == want.read(len(chunk))
                total += len(chunk)
            patched.close()
    print(json.dumps({"base": base, "sig": after_sig, "delta": after_delta, "patch": rss_mib(),
                      "ok": ok, "total": total}))
    """
)


def test_streams_512_mib_in_bounded_memory():
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(SIZE)], capture_output=True,
                         text=True, timeout=900, check=True).stdout
    r = json.loads(out)
    assert r["ok"] and r["total"] == SIZE, r
    for step in ("sig", "delta", "patch"):
        assert r[step] - r["base"] < 96, (step, r)


def test_backup_memory_does_not_grow_with_the_chain(tmp_path):
    """An incremental at the end of a 40-incremental chain reads 41 signature tars at once; its
    peak RSS stays within 24 MiB of stock's (each incremental's tar is read through a small
    buffer; a 1 MiB buffer each made it 96 MiB against stock's 41)."""
    src = tmp_path / "src"
    for i in range(400):
        d = src / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(random.Random(i).randbytes(2000))
    big = src / "big"
    big.write_bytes(random.Random(7).randbytes(8 << 20))
    target = f"file://{tmp_path / 'arch'}"
    args = ["--no-encryption", "--archive-dir", tmp_path / "cache", "--name", "chain", src,
            target]
    run_duplicity(["full", *args], clean_env())
    rng = random.Random(1)
    for i in range(40):
        with open(big, "r+b") as f:
            for _ in range(4):
                f.seek(rng.randrange(8 << 20))
                f.write(rng.randbytes(4096))
        os.utime(big, (1_700_000_000 + i, 1_700_000_000 + i))
        run_duplicity(["incremental", *args], clean_env())
    peaks = {}
    for mode in ("stock", "dupcore"):
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", str(DUPLICITY), "incremental", *[str(a) for a in args]],
            env=clean_env(mode=mode), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        peaks[mode] = int(proc.stderr.strip().splitlines()[-1])
    assert peaks["dupcore"] <= peaks["stock"] + 24 * 1024, peaks
