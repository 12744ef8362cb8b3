"""``python -m dupcore demo`` and ``bench``: real backups with stock duplicity and with dupcore.

A deterministic sample tree (database-like large files, medium files half incompressible, many
small files, odd names, symlinks, empty files and dirs) is backed up in full, changed, backed up
incrementally, restored and verified, by the installed duplicity CLI once with ``DUPCORE=0``
(stock) and once on dupcore, runs interleaved. Wall and CPU seconds (duplicity plus its gpg
children) and the ratios are printed, and every restored tree is compared with its source.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from dupcore.harness.trees import same_tree, snapshot

MiB = 1 << 20

#: Per (step, mode): each run's (wall s, CPU s, peak RSS bytes); per ("size <variant>", mode):
#: the archive's bytes.
Results = dict[tuple[str, str], list[tuple[float, ...]]]
BASE_MTIME = 1704067200
MUT_MTIME = 1717200000
PASSPHRASE = "dupcore-demo"
WORDS = (
    b"customer order invoice product quantity price total status shipped pending delivered "
    b"refund account balance address street city country postal email phone created updated "
    b"session token timestamp request response error warning backup restore volume archive "
    b"database table index column row transaction commit rollback page cache alpha beta gamma"
).split()
UNICODE = ["café", "Ünïcödé", "Ελληνικά", "Русский", "日本語", "中文", "한국어", "emoji_🎉", "Straße"]


# ------------------------------------------------------------------------------ sample tree


def _pool(rng, n=2048):
    return [b"%07d|%s|%d.%02d\n" % (rng.randint(0, 9999999),
                                   b" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))),
                                   rng.randint(0, 99999), rng.randint(0, 99)) for _ in range(n)]


def _db(rng, pool, size, page=4096):
    """Page-structured, about 2:1 compressible data, like a database file."""
    out = bytearray()
    pageno = 0
    while len(out) < size:
        parts = [struct.pack("<QII", pageno, 0xDB0FF1CE, page)]
        idx = rng.getrandbits(32)
        for j in range(page // 108 + 1):
            parts.append(rng.randbytes(16))
            parts.append(pool[(idx + j * 2654435761) % len(pool)])
        out += b"".join(parts)[:page].ljust(page, b"\0")
        pageno += 1
    return bytes(out[:size])


def _write(path, data, mtime):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


def _fix_dirs(root, mtime):
    for dirpath, _d, _f in os.walk(root, topdown=False):
        os.utime(dirpath, (mtime, mtime))


def generate(root: str, size_mb: int = 240, small: int = 3000, seed: int = 2024) -> int:
    """Write the sample tree (about size_mb MiB) under root; returns its byte count."""
    rng = random.Random(seed)
    pool = _pool(random.Random(seed + 1))
    large = max(1, size_mb * 55 // 100 // 3)
    for i in range(3):
        p = os.path.join(root, "large", f"large_{i}.db")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            left = large * MiB
            while left > 0:
                n = min(left, 8 * MiB)
                f.write(_db(rng, pool, n))
                left -= n
        os.utime(p, (BASE_MTIME + i, BASE_MTIME + i))
    medium_total = size_mb * 35 // 100
    i = 0
    while medium_total > 0:
        n = min(medium_total, rng.randint(2, 8))
        data = rng.randbytes(n * MiB) if i % 2 == 0 else _db(rng, pool, n * MiB)
        ext = "jpg" if i % 2 == 0 else "bin"
        _write(os.path.join(root, "medium", f"m_{i:03d}.{ext}"), data, BASE_MTIME + 100 + i)
        medium_total -= n
        i += 1
    for k in range(small):
        d = os.path.join(root, "small", f"L1_{k % 5}", f"L2_{k % 7}", f"L3_{k % 11}")
        name = f"{rng.choice(UNICODE)}_{k:05d}.txt" if k % 20 == 0 else f"f_{k:05d}.dat"
        size = rng.choice((0, rng.randint(1, 1024), rng.randint(1024, 16384)))
        data = b"".join(rng.choice(pool) for _ in range(size // 40 + 1))[:size]
        _write(os.path.join(root, d, name), data, BASE_MTIME + k)
    deep = os.path.join(root, "small", *[f"deep_{c}" + c * 70 for c in "abcd"])
    _write(os.path.join(deep, "long_" + "x" * 150 + ".txt"), b"deep\n" * 100, BASE_MTIME + 9)
    os.makedirs(os.path.join(root, "special", "empty_dir", "nested"), exist_ok=True)
    for k in range(10):
        _write(os.path.join(root, "special", f"empty_{k}"), b"", BASE_MTIME + 50 + k)
    for name, target in (("to_small", "../small/L1_0"), ("to_db", "../large/large_2.db"),
                         ("absolute", "/etc/hostname"), ("dangling", "no/such/file")):
        os.symlink(target, os.path.join(root, "special", name))
    _fix_dirs(root, BASE_MTIME + 1000)
    return tree_bytes(root)


def mutate(root: str, seed: int = 2024, day: int = 0) -> None:
    """Change the tree like a day of use: scattered page edits, appends, edits, deletes, adds.

    ``day`` moves every new mtime a day later, so that successive calls make successive
    changes duplicity sees."""
    rng = random.Random(seed + 1000 + day)
    mut_mtime = MUT_MTIME + day * 86400
    pool = _pool(random.Random(seed + 1))
    for i in range(3):
        p = os.path.join(root, "large", f"large_{i}.db")
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            for _ in range(max(1, size // 100 // 4096)):
                f.seek(rng.randrange(0, size - 4096))
                f.write(rng.randbytes(4096))
            if i == 0:
                f.seek(0, 2)
                f.write(_db(rng, pool, MiB))
        os.utime(p, (mut_mtime + i, mut_mtime + i))
    files = sorted(os.path.join(d, f) for d, _s, fs in os.walk(os.path.join(root, "small"))
                   for f in fs)
    chosen = rng.sample(files, min(len(files), 150))
    for j, p in enumerate(chosen[:100]):
        with open(p, "ab") as f:
            f.write(rng.choice(pool) * rng.randint(1, 20))
        os.utime(p, (mut_mtime + 100 + j, mut_mtime + 100 + j))
    for p in chosen[100:]:
        os.unlink(p)
    for k in range(50):
        _write(os.path.join(root, "small", "new", f"n_{k:03d}.txt"),
               b"".join(rng.choice(pool) for _ in range(50)), mut_mtime + 500 + k)
    _fix_dirs(root, mut_mtime + 1000)


def tree_bytes(root: str) -> int:
    """Total size of the regular files under root."""
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _s, fs in os.walk(root) for f in fs
               if stat.S_ISREG(os.lstat(os.path.join(d, f)).st_mode))


# ------------------------------------------------------------------------------ running duplicity


def duplicity_command() -> list[str]:
    """The duplicity CLI of this interpreter's environment (else the one on PATH)."""
    local = os.path.join(os.path.dirname(sys.executable), "duplicity")
    if os.path.exists(local):
        return [local]
    found = shutil.which("duplicity")
    if not found:
        raise SystemExit("duplicity is not installed: pip install duplicity")
    return [found]


def base_env(mode: str, gnupghome: str) -> dict[str, str]:
    """Environment of one run; DUPCORE=0 makes it stock. dupcore runs keep DUPCORE_COMPRESS."""
    env = dict(os.environ, TZ="UTC", GNUPGHOME=gnupghome, PASSPHRASE=PASSPHRASE)
    env.pop("DUPCORE_DISABLE", None)
    if mode == "stock":
        env["DUPCORE"] = "0"
        env.pop("DUPCORE_COMPRESS", None)
    else:
        env.pop("DUPCORE", None)
    return env


def archive_bytes(target: str) -> int:
    """Bytes of the backup files in ``target``."""
    return sum(e.stat().st_size for e in os.scandir(target) if e.is_file())


#: Seconds one duplicity run may take before the bench gives up on it (``--timeout``).
RUN_TIMEOUT = 1800.0


#: Runs ``argv[2:]`` and writes its peak RSS (KiB, with its waited-for children) to
#: ``argv[1]``; exits as it did. A process forked from the bench would count the bench's own
#: memory as its peak (Linux keeps a process's peak RSS across ``exec``); one forked from this
#: small interpreter counts only its own.
RSS_HELPER = """
import os, signal, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def timed(cmd: list[str], env: dict[str, str]
          ) -> tuple[float, float, int, subprocess.CompletedProcess[bytes]]:
    """Run a command; return (wall seconds, CPU seconds incl. children, peak RSS bytes of the
    command and its children, completed process). A run that takes longer than
    :data:`RUN_TIMEOUT` is killed (with its children) and is a :class:`Failure`. Dirty pages
    of earlier runs are written out first (not timed), so that no run pays for the write-back
    of the one before it."""
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", RSS_HELPER, rss_file.name,
                                 *cmd], env=env, stdout=out, stderr=err,
                                start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        killer = threading.Timer(RUN_TIMEOUT, kill)
        killer.start()
        try:
            _pid, status, ru = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
        peak = rss_file.read().strip()
    if timed_out.is_set():
        tail = (done.stdout + done.stderr).decode("utf-8", "replace")[-2000:]
        raise Failure(f"{' '.join(cmd[:2])} did not finish within {RUN_TIMEOUT:.0f} s "
                      f"(killed):\n{tail}")
    return wall, ru.ru_utime + ru.ru_stime, int(peak or 0) * 1024, done


class Failure(Exception):
    """A duplicity run failed, took too long, or a restored tree differs."""


def space_needed(size_mb: int, variants: int, chain: bool) -> int:
    """Bytes a run keeps on disk at its peak: the two sample trees, per variant and mode an
    archive (about 0.55 of the tree) and a restored tree, kept until the end of the round (see
    ``one_round``), and for the chain its source copy, archives and two restored trees."""
    tree = size_mb * MiB
    return int(tree * (2 + variants * 2 * 1.6 + (3.5 if chain else 0)))


def check_space(work: str, needed: int) -> None:
    """A :class:`Failure` naming the numbers when ``work`` has less free space than
    ``needed``: a file system that fills up mid-run makes duplicity or gpg fail or stall."""
    free = shutil.disk_usage(work).free
    if free < needed:
        raise Failure(f"{work} has {free / 2**30:.1f} GiB free, this run needs about "
                      f"{needed / 2**30:.1f} GiB: choose another --workdir, or a smaller "
                      "--size-mb, fewer --variants or --chain 0")


def record(results: Results, rep: int, mode: str, step: str, wall: float, cpu: float,
           rss: int) -> None:
    """Keeps and prints one run's wall and CPU seconds and peak RSS."""
    results.setdefault((step, mode), []).append((wall, cpu, float(rss)))
    print(f"  [{rep}] {mode:<8} {step:<18} {wall:7.2f} s wall {cpu:7.2f} s CPU "
          f"{rss / MiB:5.0f} MiB peak RSS", flush=True)


def run_step(mode: str, step: str, args: list[str], env: dict[str, str],
             results: Results, rep: int) -> str:
    """Run one duplicity step, record its times, fail loudly with its output."""
    wall, cpu, rss, proc = timed(duplicity_command() + args, env)
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if proc.returncode != 0:
        raise Failure(f"{mode} {step} failed ({proc.returncode}):\n{out[-3000:]}")
    record(results, rep, mode, step, wall, cpu, rss)
    return out


def one_round(work: str, src0: str, src1: str, snaps: list[dict[bytes, dict[str, int | str]]],
              variant: str, rep: int, results: Results,
              order: tuple[str, str], gnupghome: str, trash: list[str]) -> None:
    """Full, incremental, restore and verify for both modes (interleaved), one encryption."""
    enc = ["--no-encryption"] if variant == "plain" else []
    for mode in order:
        d = os.path.join(work, f"{mode}-{variant}-{rep}")
        shutil.rmtree(d, ignore_errors=True)
        url = "file://" + os.path.join(d, "target")
        common = [*enc, "--archive-dir", os.path.join(d, "cache"), "--name", "demo"]
        env = base_env(mode, gnupghome)
        out = run_step(mode, f"full {variant}", ["full", "-v", "info", *common, src0, url], env,
                       results, rep)
        size = archive_bytes(os.path.join(d, "target"))
        results.setdefault((f"size {variant}", mode), []).append((size,))
        print(f"  [{rep}] {mode:<8} {'archive ' + variant:<18} {size:,} bytes", flush=True)
        active = any(ln.startswith("dupcore ") and " active on duplicity " in ln
                     for ln in out.splitlines())
        if active != (mode == "dupcore"):
            raise Failure(f"{mode} run: dupcore {'not ' if not active else ''}active: "
                          "check `python -m dupcore status`")
        time.sleep(1.0)  # duplicity names backups by the second
        run_step(mode, f"incremental {variant}",
                 ["incremental", *common, "--allow-source-mismatch", src1, url], env, results,
                 rep)
        restored = os.path.join(d, "restored")
        run_step(mode, f"restore {variant}", ["restore", *common, url, restored], env, results,
                 rep)
        problem = same_tree(snaps[1], snapshot(restored))
        if problem:
            raise Failure(f"{mode} restore of the incremental does not match the source: "
                          f"{problem}")
        run_step(mode, f"verify {variant}", ["verify", "--compare-data", *common, url, src1],
                 env, results, rep)
        # Deleted only at the end: on ext4 without a journal, creating files within half a
        # minute of deleting many others costs the kernel a scan per file, which would be
        # charged to whichever restore came next.
        trash.append(d)


def make_chain(work: str, src0: str, days: int, gnupghome: str,
               trash: list[str]) -> tuple[str, str, dict[bytes, dict[str, int | str]]]:
    """A full backup of ``src0``'s copy and ``days`` daily incrementals (made with dupcore, plain);
    returns the chain's URL and the snapshot of the last day. The copy is deleted only at the
    end (``trash``): on ext4 without a journal, files created within five minutes of deleting
    many others in the same inode tables cost the kernel a scan per file, which would be
    charged to the restores that come next."""
    src = os.path.join(work, "chain-src")
    d = os.path.join(work, "chain")
    for p in (src, d):
        shutil.rmtree(p, ignore_errors=True)
    subprocess.run(["cp", "-a", src0, src], check=True)
    url = "file://" + os.path.join(d, "target")
    env = base_env("dupcore", gnupghome)
    t0 = time.perf_counter()
    for day in range(days + 1):
        if day:
            mutate(src, day=day)
        now = str(MUT_MTIME + day * 86400 + 3600)
        proc = subprocess.run(duplicity_command() + [
            "full" if day == 0 else "incremental", "--no-encryption", "--current-time", now,
            "--archive-dir", os.path.join(d, "cache"), "--name", "chain",
            "--allow-source-mismatch", src, url], env=env, capture_output=True, check=False)
        if proc.returncode != 0:
            raise Failure(f"chain backup {day} failed:\n{proc.stdout[-2000:]!r}")
    snap = snapshot(src)
    trash.append(src)
    print(f"chain: full + {days} incrementals made ({time.perf_counter() - t0:.0f} s)")
    return url, os.path.join(d, "cache"), snap


def make_many(work: str, files: int, gnupghome: str) -> tuple[str, str, str]:
    """A tree of ``files`` small files (1,000 per directory) and its full backup (dupcore,
    plain); returns the tree, the URL and the archive dir."""
    src = os.path.join(work, "many-src")
    d = os.path.join(work, "many")
    for p in (src, d):
        shutil.rmtree(p, ignore_errors=True)
    t0 = time.perf_counter()
    for i in range(files):
        sub = os.path.join(src, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(sub)
        name = os.path.join(sub, f"file-{i:07d}.txt")
        with open(name, "wb") as f:
            f.write(b"small file %d\n" % i * (1 + i % 7))
        os.utime(name, (BASE_MTIME, BASE_MTIME))
    _fix_dirs(src, BASE_MTIME)
    url = "file://" + os.path.join(d, "target")
    proc = subprocess.run(duplicity_command() + [
        "full", "--no-encryption", "--current-time", str(MUT_MTIME), "--archive-dir",
        os.path.join(d, "cache"), "--name", "many", src, url],
        env=base_env("dupcore", gnupghome), capture_output=True, check=False)
    if proc.returncode != 0:
        raise Failure(f"full backup of the many-files tree failed:\n{proc.stdout[-2000:]!r}")
    print(f"many-files tree: {files:,} files, full backup made "
          f"({time.perf_counter() - t0:.0f} s)")
    return src, url, os.path.join(d, "cache")


def many_round(many: tuple[str, str, str], rep: int,
               results: Results,
               order: tuple[str, str], gnupghome: str) -> None:
    """An incremental with nothing changed of the many-files tree, both modes, each on the
    same archive (the files a run adds are removed after it)."""
    src, url, cache = many
    target = url[len("file://"):]
    dirs = [target, os.path.join(cache, "many")]
    for mode in order:
        before = {p: set(os.listdir(p)) for p in dirs}
        wall, cpu, rss, proc = timed(duplicity_command() + [
            "incremental", "--no-encryption", "--current-time", str(MUT_MTIME + 3600),
            "--archive-dir", cache, "--name", "many", src, url], base_env(mode, gnupghome))
        code, out = proc.returncode, proc.stdout + proc.stderr
        for p in dirs:
            for name in set(os.listdir(p)) - before[p]:
                os.unlink(os.path.join(p, name))
        text = out.decode("utf-8", "replace")
        if code != 0 or "DeltaEntries 0" not in text:
            raise Failure(f"{mode} incremental of the many-files tree failed ({code}) or found "
                          f"changes:\n{text[-3000:]}")
        record(results, rep, mode, "incremental many", wall, cpu, rss)


def chain_round(work: str, chain: tuple[str, str, dict[bytes, dict[str, int | str]]], rep: int,
                results: Results, order: tuple[str, str],
                gnupghome: str, trash: list[str]) -> None:
    """Restore of the chain's latest point, both modes."""
    url, cache, snap = chain
    for mode in order:
        restored = os.path.join(work, f"chain-restored-{mode}-{rep}")
        shutil.rmtree(restored, ignore_errors=True)
        run_step(mode, "restore chain", ["restore", "--no-encryption", "--archive-dir", cache,
                                         "--name", "chain", url, restored],
                 base_env(mode, gnupghome), results, rep)
        problem = same_tree(snap, snapshot(restored))
        if problem:
            raise Failure(f"{mode} restore of the chain does not match its source: {problem}")
        trash.append(restored)


def medians(results: Results,
            step: str) -> dict[str, tuple[float, float, float]]:
    """Per mode: median wall and CPU seconds of ``step``'s runs, and their highest peak RSS."""
    med = {}
    for mode in ("stock", "dupcore"):
        walls = sorted(r[0] for r in results[step, mode])
        cpus = sorted(r[1] for r in results[step, mode])
        rss = max(r[2] for r in results[step, mode])
        med[mode] = (walls[len(walls) // 2], cpus[len(cpus) // 2], rss)
    return med


def report(results: Results, variants: list[str]) -> None:
    """Print the table of median wall/CPU seconds, ratios and peak RSS."""
    print()
    print(f"{'step':<20}{'stock wall':>11}{'dupcore':>9}{'x':>7}   {'stock CPU':>10}{'dupcore':>9}"
          f"{'x':>7}   {'peak RSS stock':>14}{'dupcore':>8}")
    totals = {("stock", 0): 0.0, ("stock", 1): 0.0, ("dupcore", 0): 0.0, ("dupcore", 1): 0.0}

    def row(step: str, in_total: bool) -> None:
        med = medians(results, step)
        s, d = med["stock"], med["dupcore"]
        print(f"{step:<20}{s[0]:>10.2f}s{d[0]:>8.2f}s{s[0] / d[0]:>6.2f}x   "
              f"{s[1]:>9.2f}s{d[1]:>8.2f}s{s[1] / d[1]:>6.2f}x   "
              f"{s[2] / MiB:>10.0f} MiB{d[2] / MiB:>4.0f} MiB"
              f"{'' if in_total else '   (not in the total)'}")
        if in_total:
            for mode in ("stock", "dupcore"):
                totals[mode, 0] += med[mode][0]
                totals[mode, 1] += med[mode][1]

    for variant in variants:
        for step in ("full", "incremental", "restore", "verify"):
            if (f"{step} {variant}", "stock") in results:
                row(f"{step} {variant}", True)
    for step in ("restore chain", "incremental many"):
        if (step, "stock") in results:
            row(step, False)
    for variant in variants:
        if (f"size {variant}", "stock") in results:
            s, d = (results[f"size {variant}", m][0][0] for m in ("stock", "dupcore"))
            print(f"{'archive ' + variant:<20}{s:>13,} B{d:>13,} B  dupcore/stock {d / s:.4f}")
    s0, s1, d0, d1 = (totals["stock", 0], totals["stock", 1], totals["dupcore", 0],
                      totals["dupcore", 1])
    if d0 and d1:
        print(f"{'total':<20}{s0:>10.2f}s{d0:>8.2f}s{s0 / d0:>6.2f}x   {s1:>9.2f}s{d1:>8.2f}s"
              f"{s1 / d1:>6.2f}x")
    print("\nx = stock / dupcore (higher is faster with dupcore); medians over the repeats; "
          "peak RSS: the highest of the repeats.")


def main(argv: Sequence[str] | None = None, bench: bool = False) -> int:
    """Entry point of ``demo`` (sample tree, one round) and ``bench`` (bigger, repeated)."""
    global RUN_TIMEOUT
    ap = argparse.ArgumentParser(prog=f"python -m dupcore {'bench' if bench else 'demo'}",
                                 description=__doc__)
    ap.add_argument("--size-mb", type=int, default=1400 if bench else 240,
                    help="approximate size of the sample tree")
    ap.add_argument("--small", type=int, default=20000 if bench else 3000,
                    help="number of small files")
    ap.add_argument("--repeat", type=int, default=3 if bench else 1)
    ap.add_argument("--variants", default="plain,sym",
                    help="comma list of plain (--no-encryption) and sym (symmetric gpg)")
    ap.add_argument("--chain", type=int, default=30 if bench else 0,
                    help="also restore a full backup + this many daily incrementals (0: no)")
    ap.add_argument("--many", type=int, default=0,
                    help="also an incremental with nothing changed of a tree of this many small "
                         "files (0: no)")
    ap.add_argument("--compress", choices=("default", "fast", "small"),
                    help="DUPCORE_COMPRESS of the dupcore runs (default: as in the environment)")
    ap.add_argument("--workdir", help="where to put the tree and archives (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--timeout", type=float, default=RUN_TIMEOUT,
                    help="seconds one duplicity run may take before the bench stops")
    args = ap.parse_args(argv)
    RUN_TIMEOUT = args.timeout
    variants = [v for v in args.variants.split(",") if v]
    if args.compress:
        os.environ["DUPCORE_COMPRESS"] = args.compress
    if "sym" in variants and shutil.which("gpg") is None:
        print("gpg not found: symmetric runs left out")
        variants.remove("sym")
    work = args.workdir or tempfile.mkdtemp(prefix="dupcore-demo-")
    os.makedirs(work, exist_ok=True)
    gnupghome = os.path.join(work, "gnupg")
    os.makedirs(gnupghome, mode=0o700, exist_ok=True)
    from dupcore import status

    info = status.collect()
    print(f"duplicity {info.get('duplicity_version')} ({' '.join(duplicity_command())}), "
          f"Python {info['python_version']}, dupcore {info['dupcore_version']}")
    print(info.get("banner", ""))
    print(f"deflate of the dupcore runs: {info.get('deflate')}")
    trash = []
    try:
        check_space(work, space_needed(args.size_mb, len(variants), bool(args.chain)))
        src0, src1 = os.path.join(work, "src0"), os.path.join(work, "src1")
        shutil.rmtree(src0, ignore_errors=True)
        shutil.rmtree(src1, ignore_errors=True)
        t0 = time.perf_counter()
        size = generate(src0, args.size_mb, args.small)
        subprocess.run(["cp", "-a", src0, src1], check=True)
        mutate(src1)
        snaps = [snapshot(src0), snapshot(src1)]
        print(f"sample tree: {size / MiB:.0f} MiB in {len(snaps[0])} entries, changed copy "
              f"made ({time.perf_counter() - t0:.0f} s)")
        results = {}
        chain = make_chain(work, src0, args.chain, gnupghome, trash) if args.chain else None
        many = make_many(work, args.many, gnupghome) if args.many else None
        for rep in range(args.repeat):
            order = ("stock", "dupcore") if rep % 2 == 0 else ("dupcore", "stock")
            for variant in variants:
                one_round(work, src0, src1, snaps, variant, rep, results, order, gnupghome,
                          trash)
            if chain:
                chain_round(work, chain, rep, results, order, gnupghome, trash)
            if many:
                many_round(many, rep, results, order, gnupghome)
        report(results, variants)
        print("all restored trees match their sources")
        return 0
    except Failure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=gnupghome),
                       capture_output=True, check=False)
        if not args.keep:
            for d in trash:
                shutil.rmtree(d, ignore_errors=True)
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
