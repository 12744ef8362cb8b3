"""Shared helpers of the tests: run the real duplicity CLI, environments, tree snapshots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dupcore.harness.trees import diff_trees, entry, snapshot  # noqa: F401 (the one snapshot)

TESTS = Path(__file__).resolve().parent
LEGACY = TESTS / "fixtures" / "legacy"
KEYS = LEGACY / "keys"
BIN = Path(sys.executable).parent
DUPLICITY = BIN / "duplicity"
PASSPHRASE = "dupcore-test"
BANNER = b"dupcore "  # start of dupcore's Info line in duplicity's log
ACTIVE = b" active on duplicity "
# Everything a test run passes on from the caller's environment; the rest is dropped.
_KEEP_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT", "USER", "LOGNAME")


def clean_env(gnupghome=None, mode="dupcore", **extra):
    """Environment for a duplicity subprocess: UTC, UTF-8, a private gpg home, dupcore on/off."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update(TZ="UTC", LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
    if gnupghome is not None:
        env["GNUPGHOME"] = str(gnupghome)
    if mode == "stock":
        env["DUPCORE"] = "0"
    elif mode != "dupcore":
        raise ValueError(mode)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class DupResult:
    """Outcome of one duplicity run (stdout and stderr as bytes)."""

    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def output(self):
        """stdout and stderr together."""
        return self.stdout + self.stderr

    def text(self):
        """Combined output decoded for messages."""
        return self.output.decode("utf-8", "replace")

    def banner(self):
        """dupcore's Info line, or None when duplicity logged none."""
        for line in self.output.splitlines():
            if line.startswith(BANNER) and (ACTIVE in line or b" inactive" in line):
                return line.decode("utf-8", "replace")
        return None


def run_duplicity(args, env, duplicity=DUPLICITY, check=True, timeout=900, python=None):
    """Run the duplicity CLI; raise AssertionError with its output if it fails and check is set."""
    cmd = [os.fsdecode(a) if isinstance(a, bytes) else str(a)
           for a in ([python] if python else []) + [duplicity, *args]]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
    res = DupResult(cmd, proc)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"duplicity failed ({proc.returncode}): {' '.join(cmd)}\n{res.text()[-6000:]}")
    return res


def run_killed(cmd, env, ready, timeout=300):
    """Starts ``cmd`` and sends it SIGKILL as soon as ``ready()`` is true; its exit status
    (``-9`` when killed, else how it ended first)."""
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return proc.returncode


def files_below(root):
    """How many non-directory entries are below ``root`` (0 when it does not exist)."""
    return sum(len(files) for _dirs, _subdirs, files in os.walk(root))


def assert_active(res, mode):
    """Check dupcore's banner: present and active for dupcore runs, absent for stock runs."""
    banner = res.banner()
    if mode == "dupcore":
        assert banner is not None, f"no dupcore line in duplicity -v info output:\n{res.text()}"
        assert " active on duplicity " in banner and "librsync [" in banner, banner
    else:
        assert banner is None, f"stock run shows dupcore: {banner}"


# ------------------------------------------------------------------------------ tree snapshots


def assert_same_tree(expected, actual, what=""):
    """Assert two snapshots are identical, listing the first differences."""
    problems = diff_trees(expected, actual)
    assert not problems, f"{what}: trees differ:\n" + "\n".join(problems)
