"""Backups interrupted by ``kill -9`` or by a full target disk: the rerun completes and the
chain restores exactly, with dupcore as with stock duplicity (the same exit codes)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time

import pytest
from helpers import (
    DUPLICITY,
    assert_same_tree,
    clean_env,
    files_below,
    run_duplicity,
    run_killed,
    snapshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VOLSIZE = ["--volsize", "1", "--num-retries", "1"]


def make_tree(root, seed):
    """About 15 MB that does not compress (a volume per MB) and some small files."""
    rng = random.Random(seed)
    (root / "d").mkdir(parents=True)
    for i in range(10):
        (root / "d" / f"f{i}.bin").write_bytes(rng.randbytes(1_500_000))
    for i in range(60):
        (root / f"s{i:02}.txt").write_text(f"small {i}\n" * i)


def change_tree(root, seed):
    """Rewrites parts of some big files, adds and removes small ones."""
    rng = random.Random(seed)
    for i in (1, 4, 7):
        p = root / "d" / f"f{i}.bin"
        data = bytearray(p.read_bytes())
        at = rng.randrange(len(data) - 300_000)
        data[at:at + 300_000] = rng.randbytes(300_000)
        p.write_bytes(bytes(data))
        os.utime(p, (time.time() + 5, time.time() + 5))
    (root / "s03.txt").unlink()
    (root / "new.bin").write_bytes(rng.randbytes(2_500_000))


def volumes(target):
    return sum(1 for n in os.listdir(target) if ".difftar" in n)


def killed_at(args, env, target, count):
    """Starts duplicity and kills it (SIGKILL) once ``count`` volumes are in ``target``."""
    before = volumes(target)
    code = run_killed([DUPLICITY, *args], env, lambda: volumes(target) - before >= count)
    assert code == -signal.SIGKILL, f"the backup ended ({code}) before {count} volumes were written"


def assert_restarted(rerun):
    """The rerun picked up the partial set: it resumed it; or, killed after a volume reached
    the target but before the manifest recorded it, cleaned it up and started the set again;
    or, killed between the manifest's and the signatures' first write, discarded the set
    (stock duplicity stops there for good when the set is the chain's first incremental:
    dupcore.chains)."""
    assert (b"partial set, restarting" in rerun.output
            or b"backup set, restarting" in rerun.output
            or b"discarding last backup set" in rerun.output), rerun.text()[-3000:]


@pytest.mark.parametrize("point", [1, 4, 9])
def test_killed_full_and_incremental_resume_and_restore_exactly(point, tmp_path):
    """kill -9 after ``point`` volumes of a full and of an incremental backup; each rerun
    completes and both points in time restore exactly."""
    src, target, cache = tmp_path / "src", tmp_path / "target", tmp_path / "cache"
    make_tree(src, point)
    target.mkdir()
    env = clean_env(None, "dupcore")
    common = ["--no-encryption", *VOLSIZE, "--archive-dir", str(cache), "--name", "k"]
    url = f"file://{target}"
    killed_at(["full", *common, str(src), url], env, target, point)
    rerun = run_duplicity(["full", *common, str(src), url], env)
    assert_restarted(rerun)
    first = snapshot(src)
    time.sleep(1.1)  # the incremental gets a later backup time
    change_tree(src, point)
    killed_at(["incremental", *common, str(src), url], env, target, min(point, 3))
    rerun = run_duplicity(["incremental", *common, str(src), url], env)
    assert_restarted(rerun)
    second = snapshot(src)
    for mode in ("dupcore", "stock"):
        out = tmp_path / f"restore-{mode}"
        run_duplicity(["restore", *common, url, str(out)], clean_env(None, mode))
        assert_same_tree(second, snapshot(out), f"latest state restored by {mode}")
    full = next(n for n in os.listdir(target) if n.startswith("duplicity-full.")
                and n.endswith(".manifest"))
    t = full.split(".")[1]  # 20261205T172705Z
    stamp = f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}Z"
    out = tmp_path / "restore-first"
    run_duplicity(["restore", *common, "--time", stamp, url, str(out)], env)
    assert_same_tree(first, snapshot(out), "the full backup's state")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs as target needs root")
@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_full_target_disk_then_rerun(tmp_path):
    """The target file system fills up during a full backup: dupcore stops with stock's exit
    code; with room again, the rerun completes and restores exactly."""
    src = tmp_path / "src"
    make_tree(src, 99)
    expected = snapshot(src)
    codes = {}
    for mode in ("stock", "dupcore"):
        target, cache = tmp_path / f"target-{mode}", tmp_path / f"cache-{mode}"
        target.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(target)],
                                 capture_output=True, check=False)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace')}")
        try:
            env = clean_env(None, mode)
            common = ["--no-encryption", *VOLSIZE, "--archive-dir", str(cache), "--name", "f"]
            url = f"file://{target}"
            res = run_duplicity(["full", *common, str(src), url], env, check=False)
            codes[mode] = res.returncode
            assert b"No space left on device" in res.output, res.text()[-3000:]
            subprocess.run(["mount", "-o", "remount,size=64m", str(target)], check=True)
            rerun = run_duplicity(["full", *common, str(src), url], env)
            assert b"restarting" in rerun.output.lower(), rerun.text()[-3000:]
            out = tmp_path / f"restore-{mode}"
            run_duplicity(["restore", *common, url, str(out)], env)
            assert_same_tree(expected, snapshot(out), f"restored by {mode} after the rerun")
        finally:
            subprocess.run(["umount", str(target)], check=False)
    assert codes["dupcore"] == codes["stock"] != 0, codes



def restore_chain(src, target, cache, run):
    """A full and an incremental backup (30 files of 2 MB, 5 MB volumes) made with
    ``run(args)``; returns the duplicity options and URL to restore it."""
    rng = random.Random(7)
    (src / "d").mkdir(parents=True)
    for i in range(30):
        (src / "d" / f"f{i}.bin").write_bytes(rng.randbytes(2_000_000))
    for i in range(60):
        (src / f"s{i:02}.txt").write_text(f"small {i}\n" * i)
    target.mkdir()
    common = ["--no-encryption", "--volsize", "5", "--archive-dir", str(cache), "--name", "r"]
    url = f"file://{target}"
    run(["full", *common, str(src), url])
    time.sleep(1.1)
    change_tree(src, 7)
    run(["incremental", *common, str(src), url])
    return common, url


def kill_restore_halfway(cmd, env, out, src):
    """Runs the restore ``cmd`` and kills it once 3 files are in ``out``."""
    code = run_killed(cmd, env, lambda: files_below(out) >= 3)
    assert code == -signal.SIGKILL, f"the restore ended ({code}) before it was killed"
    assert files_below(out) < files_below(src), "the restore was not cut short"


def rerun_after_kill(run, common, url, out, expected, refuses, what):
    """Reruns a killed restore with ``--force`` over the partial target. duplicity 3.x refuses
    any non-empty target, even with ``--force`` (exit 11), and the rerun goes to the emptied
    target; 2.2.x restores over it (``refuses`` False). Either way the result is exact."""
    res = run(["restore", "--force", *common, url, str(out)], check=False)
    if refuses:
        assert res.returncode == 11 and b"Will not overwrite" in res.output, res.text()
        shutil.rmtree(out)
        run(["restore", *common, url, str(out)])
    else:
        assert res.returncode == 0, res.text()
    assert_same_tree(expected, snapshot(out), what)


@pytest.mark.parametrize("mode", ["dupcore", "stock"])
def test_killed_restore_then_rerun_is_exact(mode, tmp_path):
    """kill -9 of a restore of a full + incremental chain once some files are on disk; the
    reruns behave as stock's and end exact (see :func:`rerun_after_kill`; other release lines:
    test_e2e_versions)."""
    src, target, cache = tmp_path / "src", tmp_path / "target", tmp_path / "cache"
    common, url = restore_chain(src, target, cache,
                                lambda args: run_duplicity(args, clean_env(None, "dupcore")))
    out = tmp_path / "restored"
    env = clean_env(None, mode)
    kill_restore_halfway([DUPLICITY, "restore", *common, url, out], env, out, src)
    rerun_after_kill(lambda args, check=True: run_duplicity(args, env, check=check), common, url,
                     out, snapshot(src), True, f"{mode}: killed restore, rerun")


@pytest.mark.parametrize("mode", ["stock", "dupcore"])
def test_first_incremental_killed_before_its_signatures(mode, tmp_path):
    """The state a kill leaves between the manifest's and the signatures' first write, for
    the first incremental of a chain (made exactly: a finished incremental with its
    signatures and remote manifest removed and its local manifest back to ``.part``). Stock
    duplicity refuses every later incremental (exit 17, "Old signatures not found"); dupcore
    discards the set as duplicity does after a later incremental, and the rerun's backup
    restores exactly."""
    src, target, cache = tmp_path / "src", tmp_path / "target", tmp_path / "cache"
    make_tree(src, 5)
    target.mkdir()
    env = clean_env(None, "dupcore")
    common = ["--no-encryption", *VOLSIZE, "--archive-dir", str(cache), "--name", "s"]
    url = f"file://{target}"
    run_duplicity(["full", *common, str(src), url], env)
    time.sleep(1.1)
    change_tree(src, 5)
    run_duplicity(["incremental", *common, str(src), url], env)
    local = cache / "s"
    for d in (local, target):
        for name in os.listdir(d):
            if name.startswith("duplicity-new-signatures."):
                os.unlink(d / name)
            elif name.startswith("duplicity-inc.") and name.endswith(".manifest"):
                if d == local:
                    os.rename(d / name, d / f"{name}.part")
                else:
                    os.unlink(d / name)
    time.sleep(1.1)
    (src / "after.txt").write_text("written after the interrupted incremental\n")
    rerun = run_duplicity(["incremental", *common, str(src), url], clean_env(None, mode),
                          check=False)
    if mode == "stock":
        assert rerun.returncode == 17 and b"Old signatures not found" in rerun.output, \
            rerun.text()[-3000:]
        return
    assert rerun.returncode == 0, rerun.text()[-3000:]
    assert b"discarding last backup set" in rerun.output, rerun.text()[-3000:]
    out = tmp_path / "restored"
    run_duplicity(["restore", *common, url, str(out)], env)
    assert_same_tree(snapshot(src), snapshot(out), "after the discarded incremental")
