"""Every archive file of a full + incremental chain damaged five ways, plain and symmetric:
dupcore's restore is never worse than stock's and never silently wrong.

For each case both restore the latest state from a damaged copy of the archive. Where stock
restores exactly, dupcore must too (exit 0, same tree); wherever dupcore exits 0 the tree must
be exact; dupcore never ends in a Python traceback (stock does where its manifest parser trips
over a damaged manifest); and where both fail, dupcore's message names
what is wrong in one line duplicity prints (exit codes may differ only where stock's is a
traceback's, or stock hangs).
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest
from helpers import PASSPHRASE, clean_env, diff_trees, run_duplicity, snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: (name, change of the file's bytes)
DAMAGES = [
    ("flip@100", lambda d: _flip(d, 100)),
    ("flip@middle", lambda d: _flip(d, len(d) // 2)),
    ("flip@end", lambda d: _flip(d, len(d) - 1)),
    ("cut-half", lambda d: d[: len(d) // 2]),
    ("empty", lambda d: b""),
]

#: archive file kinds: (name, predicate on the file name)
KINDS = [
    ("full-vol1", lambda n: n.startswith("duplicity-full.") and ".vol1." in n),
    ("full-vol2", lambda n: n.startswith("duplicity-full.") and ".vol2." in n),
    ("full-manifest", lambda n: n.startswith("duplicity-full.") and ".manifest" in n),
    ("full-signatures", lambda n: n.startswith("duplicity-full-signatures.")),
    ("inc-vol1", lambda n: n.startswith("duplicity-inc.") and ".vol1." in n),
    ("inc-manifest", lambda n: n.startswith("duplicity-inc.") and ".manifest" in n),
    ("new-signatures", lambda n: n.startswith("duplicity-new-signatures.")),
]


#: Seconds a restore may take: stock duplicity hangs on some damaged encrypted volumes (its gpg
#: child waits after "TarFile is closed"), which counts as a failure of stock's.
STOCK_TIMEOUT = 30
DUPCORE_TIMEOUT = 300


class Hung:
    """The outcome of a stock run that had to be killed."""

    returncode = "hung"
    output = b""

    def text(self):
        return "(killed after the timeout)"


def _traceback(output):
    """Whether duplicity ended in a Python traceback (its own format or Python's)."""
    return b"Traceback (innermost last)" in output or b"Traceback (most recent call last)" in output


def _flip(data, at):
    if not data:
        return data
    at = max(0, min(at, len(data) - 1))
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]


def _env(variant, mode, gnupghome):
    extra = {"PASSPHRASE": PASSPHRASE} if variant == "sym" else {}
    return clean_env(gnupghome, mode, **extra)


def _enc(variant):
    return ["--no-encryption"] if variant == "plain" else []


@pytest.fixture(scope="module", params=["plain", "sym"])
def chain(request, tmp_path_factory, gnupghome):
    """A full (two volumes) and an incremental backup by dupcore, and the latest tree."""
    variant = request.param
    base = tmp_path_factory.mktemp(f"matrix-{variant}")
    src = base / "src"
    rng = random.Random(7)
    (src / "d").mkdir(parents=True)
    (src / "d" / "big.bin").write_bytes(rng.randbytes(1_600_000))
    (src / "d" / "text.txt").write_bytes(b"a line of text\n" * 4000)
    for i in range(20):
        (src / f"s{i:02}").write_bytes(rng.randbytes(i * 50))
    os.symlink("d/text.txt", src / "link")
    url = f"file://{base}/archive"
    env = _env(variant, "dupcore", gnupghome)
    common = [*_enc(variant), "--volsize", "1", "--archive-dir", str(base / "cache")]
    run_duplicity(["full", *common, str(src), url], env)
    data = bytearray((src / "d" / "big.bin").read_bytes())
    data[200_000:260_000] = rng.randbytes(60_000)
    (src / "d" / "big.bin").write_bytes(bytes(data))
    (src / "d" / "text.txt").write_bytes(b"another line\n" * 5000)
    (src / "new").write_bytes(b"new file\n")
    for p in (src / "d" / "big.bin", src / "d" / "text.txt"):
        st = os.stat(p)
        os.utime(p, (st.st_atime, st.st_mtime + 10))
    run_duplicity(["incremental", *common, str(src), url], env)
    names = os.listdir(base / "archive")
    for kind, match in KINDS:
        assert sum(1 for n in names if match(n)) == 1, (kind, names)
    return variant, base / "archive", snapshot(src)


def _damaged_copy(archive, dest, kind, damage):
    dest.mkdir()
    match = dict(KINDS)[kind]
    change = dict(DAMAGES)[damage]
    for name in os.listdir(archive):
        data = (archive / name).read_bytes()
        (dest / name).write_bytes(change(data) if match(name) else data)


@pytest.mark.parametrize("damage", [d for d, _ in DAMAGES])
@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_damaged_file_restore_never_worse_than_stock(chain, kind, damage, tmp_path, gnupghome,
                                                     pool):
    variant, archive, expected = chain
    damaged = tmp_path / "archive"
    _damaged_copy(archive, damaged, kind, damage)

    def restore(mode):
        target = tmp_path / f"restore-{mode}"
        try:
            res = run_duplicity(["restore", *_enc(variant), "--archive-dir",
                                 str(tmp_path / f"cache-{mode}"), f"file://{damaged}",
                                 str(target)], _env(variant, mode, gnupghome), check=False,
                                timeout=STOCK_TIMEOUT if mode == "stock" else DUPCORE_TIMEOUT)
        except subprocess.TimeoutExpired:
            if mode == "dupcore":
                raise AssertionError(f"dupcore hangs: {variant} {kind} {damage}") from None
            return Hung(), ["stock hangs"]
        problems = diff_trees(expected, snapshot(target)) if target.exists() else ["no target"]
        return res, problems

    (stock, stock_problems), (dup, dup_problems) = pool.map(restore, ["stock", "dupcore"])
    what = f"{variant} {kind} {damage}: stock {stock.returncode}, dupcore {dup.returncode}"
    assert not _traceback(dup.output), f"{what}: a traceback\n{dup.text()[-3000:]}"
    if stock.returncode == 0 and not stock_problems:
        assert dup.returncode == 0 and not dup_problems, \
            f"{what}: stock restored exactly, dupcore did not\n{dup.text()[-3000:]}"
    if dup.returncode == 0:
        assert not dup_problems, f"{what}: exit 0 with a wrong tree: {dup_problems[:5]}"
    else:
        stock_broken = _traceback(stock.output) or isinstance(stock, Hung)
        assert dup.returncode == stock.returncode or stock_broken or stock.returncode == 0, \
            f"{what}\n--- stock\n{stock.text()[-2000:]}\n--- dupcore\n{dup.text()[-2000:]}"
