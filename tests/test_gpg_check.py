"""duplicity 3.2's start-up gpg test, started ahead (dupcore.gpg_check): the real duplicity CLI
and the real gpg, logged by a wrapper on ``PATH`` that runs the real binary."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess

import pytest
from helpers import PASSPHRASE, clean_env, run_duplicity

GPG = shutil.which("gpg")


@pytest.fixture(autouse=True)
def duplicity_32_and_gpg(tmp_path):
    """The project's duplicity (3.2, the line with the start-up test) and gpg; the test's
    gpg-agent stopped after it."""
    from duplicity import __version__

    assert GPG is not None, "gpg is not installed (apt-get install gnupg gpg-agent)"
    assert __version__.startswith("3.2."), __version__
    yield
    subprocess.run(["gpgconf", "--kill", "all"],
                   env=dict(os.environ, GNUPGHOME=str(tmp_path / "gnupg")),
                   capture_output=True, check=False)


@pytest.fixture
def logged_gpg(tmp_path):
    """A ``gpg`` first on ``PATH`` that logs each command line and XDG_CACHE_HOME, then runs
    the real gpg; returns (bin directory, log file)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gpg.log"
    wrapper = bindir / "gpg"
    wrapper.write_text(f"""#!/bin/sh
echo "$* | XDG_CACHE_HOME=$XDG_CACHE_HOME" >> {log}
exec {GPG} "$@"
""")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return bindir, log


def _env(tmp_path, bindir, mode, **extra):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    env = clean_env(home, mode=mode, PASSPHRASE=PASSPHRASE, **extra)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    return env


def _tests_run(log):
    """The start-up test's gpg runs in the log."""
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if "--symmetric -o -" in line]


@contextlib.contextmanager
def _process_environment(env):
    """This process runs with ``env`` as its environment, and without a run started ahead
    after."""
    from dupcore import gpg_check

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        gpg_check._ahead = None
        os.environ.clear()
        os.environ.update(old)


def test_the_test_run_started_ahead_is_the_one_check_gpg_takes(tmp_path, logged_gpg):
    """One gpg test run per duplicity run, with the environment duplicity gives it (XDG_* set),
    and the status names the component active."""
    bindir, log = logged_gpg
    target = tmp_path / "target"
    target.mkdir()
    env = _env(tmp_path, bindir, "dupcore")
    res = run_duplicity(["collection-status", "-v", "info", "--archive-dir",
                         tmp_path / "cache", f"file://{target}"], env)
    runs = _tests_run(log)
    assert len(runs) == 1, runs
    assert runs[0].endswith(f"XDG_CACHE_HOME={os.environ.get('HOME')}/.cache"), runs
    assert b"gpg-check [" in res.output, res.text()[-3000:]


def test_no_run_outside_the_duplicity_command(tmp_path, logged_gpg):
    """A program importing duplicity (``python -m dupcore status``) starts no gpg run."""
    import sys

    bindir, log = logged_gpg
    env = _env(tmp_path, bindir, "dupcore")
    code = "import duplicity.config, duplicity.gpg; print('imported')"
    out = subprocess.run([sys.executable, "-c", code, "collection-status", "file:///x"], env=env,
                         capture_output=True, check=True)
    assert out.stdout.strip() == b"imported"
    status = subprocess.run([sys.executable, "-m", "dupcore", "status"], env=env,
                            capture_output=True, check=True)
    assert b"gpg-check" in status.stdout
    assert _tests_run(log) == []


@pytest.mark.parametrize("options", [["--gpg-options=--bogus-option"],
                                     ["--gpg-options=--compress-level=1",
                                      "--gpg-options=--no-such-flag"]])
def test_a_failing_test_fails_as_stock(tmp_path, logged_gpg, options):
    """gpg failing the test (an unknown option): the same exit code and the same lines as
    stock, and one test run."""
    bindir, log = logged_gpg
    target = tmp_path / "target"
    target.mkdir()
    outs = {}
    for mode in ("stock", "dupcore"):
        if log.exists():
            log.unlink()
        env = _env(tmp_path, bindir, mode)
        res = run_duplicity(["collection-status", *options, "--archive-dir",
                             tmp_path / "cache", f"file://{target}"], env, check=False)
        assert len(_tests_run(log)) == 1, (mode, log.read_text())
        outs[mode] = res
    assert outs["stock"].returncode != 0
    assert outs["dupcore"].returncode == outs["stock"].returncode
    assert outs["dupcore"].stderr == outs["stock"].stderr
    assert b"loopback" in outs["stock"].output


def test_another_command_than_foreseen_runs_gpg_as_stock(tmp_path, logged_gpg):
    """The run started ahead does not serve a check with other options (here a gpg home
    given in gpg.conf's place, --homedir, added after start-up): gpg runs again, as stock."""
    from dupcore import gpg_check
    from duplicity import gpginterface

    bindir, log = logged_gpg
    env = _env(tmp_path, bindir, "dupcore")
    with _process_environment(env):
        ahead = gpg_check._Ahead(gpg_check.foreseen_command(gpginterface, "gpg", ""))
        gpg_check._ahead = ahead
        run = gpginterface.GnuPG.run
        gnupg = gpginterface.GnuPG()
        gnupg.options.meta_interactive = 0
        gnupg.options.extra_args.extend(["--homedir", str(tmp_path / "gnupg"),
                                         *gpg_check.TEST_OPTIONS])
        proc = gpg_check._serving(gpginterface, run)(gnupg, list(gpg_check.TEST_COMMANDS),
                                                      create_fhs=list(gpg_check.TEST_HANDLES))
        assert isinstance(proc, gpginterface.Process)
        proc.handles["stdin"].write(b"test")
        proc.handles["stdin"].close()
        out = proc.handles["stdout"].read()
        proc.handles["stdout"].close()
        proc.handles["stderr"].read()
        proc.handles["stderr"].close()
        proc.wait()
        assert out.startswith(b"\x8c")  # a symmetric-key session key packet
        assert gpg_check._ahead is ahead  # still there for the matching command
        ahead.status()
    runs = _tests_run(log)
    assert len(runs) == 2 and "--homedir" in runs[1] and "--homedir" not in runs[0], runs


def test_other_input_runs_gpg_again(tmp_path, logged_gpg):
    """A check writing other input than the run ahead got: gpg runs again with it, and its
    output is that input encrypted."""
    from dupcore import gpg_check
    from duplicity import gpginterface

    bindir, log = logged_gpg
    env = _env(tmp_path, bindir, "dupcore")
    with _process_environment(env):
        command = gpg_check.foreseen_command(gpginterface, "gpg", "")
        gpg_check._ahead = gpg_check._Ahead(command)
        gnupg = gpginterface.GnuPG()
        gnupg.call = "gpg"
        gnupg.options.meta_interactive = 0
        gnupg.options.extra_args.extend(gpg_check.TEST_OPTIONS)
        proc = gpg_check._serving(gpginterface, gpginterface.GnuPG.run)(
            gnupg, list(gpg_check.TEST_COMMANDS), create_fhs=list(gpg_check.TEST_HANDLES))
        assert isinstance(proc, gpg_check._Process)
        assert gpg_check._ahead is None  # taken once
        proc.handles["stdin"].write(b"other input")
        proc.handles["stdin"].close()
        out = proc.handles["stdout"].read()
        proc.wait()
        enc = tmp_path / "out.gpg"
        enc.write_bytes(out)
        plain = subprocess.run([GPG, "--batch", "--pinentry-mode", "loopback", "--passphrase",
                                "test", "-d", str(enc)], env=env, capture_output=True,
                               check=True).stdout
        assert plain == b"other input"
    assert len(_tests_run(log)) == 2
