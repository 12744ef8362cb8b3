"""Bounded memory with a 16 GiB file: a full backup, an incremental after its middle changed,
and the restore of the latest state each peak under 256 MiB RSS, and the restored file is exact.

The source is sparse (it costs no disk), the archive of zeros is small, and the restored file is
written in full (16 GiB of disk for a moment; the test checks the room first). The file's SHA-1
is compared piecewise, never read whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest
from helpers import DUPLICITY, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE = 16 << 30
MIDDLE = SIZE // 2
LIMIT_MIB = 256


def _run_measured(args, env):
    """Runs duplicity; returns (exit code, output, peak RSS in MiB of the process)."""
    proc = subprocess.Popen([str(DUPLICITY), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return proc.returncode, out.decode("utf-8", "replace"), usage.ru_maxrss / 1024


def _sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_16_gib_sparse_file_backup_incremental_restore_under_256_mib(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    if free < SIZE + (8 << 30):
        pytest.skip(f"needs {(SIZE >> 30) + 8} GiB free for the restored file, "
                    f"{free >> 30} GiB here")
    src, target, cache = tmp_path / "src", tmp_path / "target", tmp_path / "cache"
    src.mkdir()
    big = src / "big.img"
    with open(big, "wb") as f:
        f.truncate(SIZE)
        f.seek(1 << 20)
        f.write(b"start of the disk image\n" * 1000)
    (src / "small.txt").write_text("a small file next to it\n")
    env = clean_env(None, "dupcore")
    common = ["--no-encryption", "--archive-dir", cache, "--name", "big"]
    url = f"file://{target}"
    peaks = {}

    code, out, peaks["full"] = _run_measured(["full", *common, src, url], env)
    assert code == 0, out[-3000:]
    time.sleep(1.1)
    with open(big, "r+b") as f:
        f.seek(MIDDLE)
        f.write(os.urandom(4 << 20))
    st = os.stat(big)
    os.utime(big, (st.st_atime, st.st_mtime + 10))
    code, out, peaks["incremental"] = _run_measured(["incremental", *common, src, url], env)
    assert code == 0, out[-3000:]
    assert "ChangedFiles 1" in out, out[-3000:]
    expected = _sha1(big)

    out_dir = tmp_path / "restored"
    code, out, peaks["restore"] = _run_measured(["restore", *common, url, out_dir], env)
    try:
        assert code == 0, out[-3000:]
        assert os.path.getsize(out_dir / "big.img") == SIZE
        assert _sha1(out_dir / "big.img") == expected, "the restored 16 GiB file differs"
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print("peak RSS MiB:", {k: round(v) for k, v in peaks.items()})
    over = {k: round(v) for k, v in peaks.items() if v > LIMIT_MIB}
    assert not over, f"peak RSS above {LIMIT_MIB} MiB: {over}"
