"""The user-facing commands run for real: selftest and a small demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from helpers import clean_env

pytestmark = pytest.mark.e2e


def _dupcore(*args, mode="dupcore"):
    env = clean_env(mode=mode)
    return subprocess.run([sys.executable, "-m", "dupcore", *args], env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def test_selftest_passes():
    """selftest: both variants round-trip, exit 0, and dupcore's line is shown."""
    res = _dupcore("selftest")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok   plain" in res.stdout and "ok   sym" in res.stdout
    assert " active on duplicity " in res.stdout


def test_selftest_reports_stock_when_disabled():
    """With DUPCORE=0 the round trip still passes and says dupcore is not active."""
    res = _dupcore("selftest", "--variants", "plain", mode="stock")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dupcore not active" in res.stdout


def test_demo_small_tree():
    """demo on a small tree: times both modes, prints ratios, restored trees match."""
    res = _dupcore("demo", "--size-mb", "8", "--small", "60", "--variants", "plain")
    assert res.returncode == 0, res.stdout + res.stderr
    for word in ("full plain", "incremental plain", "restore plain", "verify plain", "total",
                 "all restored trees match their sources"):
        assert word in res.stdout
    # each row ends with both runs' peak RSS, of a real process (a Python interpreter with
    # duplicity loaded is well above 10 MiB)
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("restore plain "))
    rss = re.findall(r"(\d+) MiB", row)
    assert len(rss) == 2 and all(int(v) > 10 for v in rss), row


def test_demo_refuses_a_work_directory_too_small(tmp_path):
    """A run that would fill its file system stops before it starts, naming the numbers."""
    res = _dupcore("demo", "--size-mb", "100000000", "--variants", "plain", "--workdir",
                   str(tmp_path / "work"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "GiB free, this run needs about" in res.stderr
    assert not (tmp_path / "work" / "src0").exists()


def test_demo_stops_a_run_that_takes_too_long(tmp_path):
    """A duplicity run past --timeout is killed and reported instead of waited for."""
    res = _dupcore("demo", "--size-mb", "8", "--small", "60", "--variants", "plain",
                   "--timeout", "0.01", "--workdir", str(tmp_path / "work"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "did not finish within 0 s (killed)" in res.stderr


def test_peak_rss_is_the_commands_not_the_benchs():
    """The bench's peak RSS of a run is the command's own: a bench holding 300 MiB (its tree
    snapshots) does not make a small command's peak 300 MiB (Linux keeps a process's peak
    across exec, so a child forked from the bench would report the bench's memory)."""
    from dupcore.harness import demo

    held = bytearray(300 << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    wall, cpu, rss, done = demo.timed([sys.executable, "-c", "x = bytearray(40 << 20)"],
                                      dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert 40 << 20 < rss < 150 << 20, rss
    assert wall > 0 and cpu > 0
    del held
