"""Round trips under other duplicity release lines, each in its own environment with dupcore.

* duplicity 3.0.7, 2.2.4 and 2.1.5 from PyPI, each in a venv under the test cache
  (``$DUPCORE_TEST_CACHE``, default ``~/.cache/dupcore-tests``), created once and reused;
* Debian's duplicity 0.8.22 (``apt-get install duply`` brings it), run by a venv of the system
  Python with ``--system-site-packages`` (best effort adapter);
* duply (Debian's package) driving duplicity 3.2.1 of this environment and Debian's 0.8.22.

dupcore goes into each environment the way a wheel would put it: the ``dupcore`` package next to
duplicity in site-packages plus ``dupcore_activate.pth`` at the site-packages root (copied from
this interpreter's installation, so the compiled engine is the one under test). Each chain is made
stock and on dupcore, restored at every time point by both, and the archive contents compared.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    DUPLICITY,
    PASSPHRASE,
    TESTS,
    assert_active,
    assert_same_tree,
    clean_env,
    run_duplicity,
    snapshot,
)
from test_e2e import Chain, _cross_restore

pytestmark = [pytest.mark.e2e, pytest.mark.versions]

CACHE = Path(os.environ.get("DUPCORE_TEST_CACHE", Path.home() / ".cache" / "dupcore-tests"))
PYPI_VERSIONS = ("3.0.7", "2.2.4", "2.1.5")
DEBIAN_DUPLICITY = Path("/usr/bin/duplicity")
DEBIAN_PYTHON = Path("/usr/bin/python3")
SRC_PTH = TESTS.parent / "python" / "dupcore.data" / "purelib" / "dupcore_activate.pth"


def _site_packages(venv):
    found = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    assert len(found) == 1, found
    return Path(found[0])


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def install_dupcore(venv):
    """Put this interpreter's dupcore (package + start-up .pth) into another environment."""
    spec = importlib.util.find_spec("dupcore")
    src = Path(next(iter(spec.submodule_search_locations)))
    site = _site_packages(venv)
    dst = site / "dupcore"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    from dupcore.status import find_pth

    pth = find_pth() or SRC_PTH
    shutil.copy(pth, site / "dupcore_activate.pth")


def pypi_venv(version):
    """A venv with duplicity==version from PyPI (created once per cache) and current dupcore."""
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = CACHE / f"duplicity-{version}-{tag}"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", venv])
        # duplicity's file:// backend needs only these; the cloud SDKs it lists are not used
        _run([venv / "bin" / "pip", "install", "-q", "--no-deps", f"duplicity=={version}"])
        _run([venv / "bin" / "pip", "install", "-q", "fasteners", "pexpect"])
        (venv / ".complete").write_text(version)
    install_dupcore(venv)
    return venv


def debian_venv():
    """A venv of Debian's python3 that sees Debian's duplicity 0.8.22, with current dupcore."""
    if not DEBIAN_DUPLICITY.exists():
        pytest.fail("Debian's duplicity is missing: apt-get install duply (see .ci/run)")
    venv = CACHE / "debian-system-python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", venv])
        (venv / ".complete").write_text("debian")
    install_dupcore(venv)
    return venv


TARGETS = {
    "3.0.7": ("3.0.x (3.0.7)",),
    "2.2.4": ("2.2.x (2.2.4)",),
    "2.1.5": ("2.1.x (2.1.5)",),
    "0.8.22": ("0.8.22 (0.8.22)",),
}


@pytest.fixture(scope="session")
def envs():
    """duplicity command (script, python) per version."""
    out = {}
    for v in PYPI_VERSIONS:
        venv = pypi_venv(v)
        out[v] = (venv / "bin" / "duplicity", None)
    venv = debian_venv()
    out["0.8.22"] = (DEBIAN_DUPLICITY, venv / "bin" / "python")
    return out


@pytest.fixture(scope="session")
def version_chains(tmp_path_factory, envs, states, gnupghome, pool):
    """Per version: plain chains stock and dupcore with cross-restores, and a dupcore sym chain."""
    out = {}

    def make(version, mode, variant):
        script, python = envs[version]
        work = tmp_path_factory.mktemp(f"v{version}")
        c = Chain(str(work), mode, variant, gnupghome, states[0], duplicity=script,
                  python=python)
        if version == "0.8.22":
            c.path_opt = "-r"
        c.run()
        return c

    jobs = {(v, m, var): pool.submit(make, v, m, var) for v in envs
            for (m, var) in (("stock", "plain"), ("dupcore", "plain"), ("dupcore", "sym"))}
    chains = {k: f.result() for k, f in jobs.items()}
    cross = {k: pool.submit(_cross_restore, c, gnupghome) for k, c in chains.items()
             if k[2] == "plain"}
    for k, c in chains.items():
        out[k] = (c, cross[k].result() if k in cross else None)
    return out


@pytest.mark.parametrize("version", list(TARGETS))
def test_dupcore_active_with_version_adapter(version_chains, version):
    """dupcore's Info line names the adapter of this release line in dupcore runs only."""
    for (v, mode, _var), (chain, _cross) in version_chains.items():
        if v != version:
            continue
        for res in chain.backups:
            assert_active(res, mode)
            if mode == "dupcore":
                assert f"on duplicity {TARGETS[version][0]}" in res.banner(), res.banner()


@pytest.mark.parametrize("version", list(TARGETS))
def test_round_trip_and_cross_restore(version_chains, states, version):
    """Every time point restores exactly, by its own mode and by the other one."""
    for (v, mode, var), (chain, cross) in version_chains.items():
        if v != version:
            continue
        engine = mode == "dupcore" and v in PYPI_VERSIONS
        for i, snap in enumerate(states[1]):
            assert_same_tree(snap, chain.results[f"restore-{i}"], f"{v} {mode} {var} t{i}")
            assert chain.results[f"restore-{i}-engine"] == engine, (v, mode, var, i)
            if cross is not None:
                assert_same_tree(snap, cross[i], f"{v} {mode}-made, other mode restores t{i}")
        assert chain.results["verify-ok"].returncode == 0, chain.results["verify-ok"].text()


@pytest.mark.parametrize("version", list(TARGETS))
def test_archive_contents_identical(version_chains, version):
    """Stock and dupcore write the same files, deltas and signatures on this release line."""
    stock = version_chains[version, "stock", "plain"][0].results["contents"]
    dup = version_chains[version, "dupcore", "plain"][0].results["contents"]
    assert sorted(stock) == sorted(dup)
    for k in stock:
        assert stock[k] == dup[k], f"{version}: {k} differs"


@pytest.mark.parametrize("version", list(TARGETS))
def test_damaged_manifests_stop_with_one_line(envs, version, tmp_path):
    """On every release line: an emptied incremental manifest stops a restore (exit 5) instead
    of restoring the full backup's state, and an unreadable one stops with one line (exit 6)
    instead of a traceback."""
    script, python = envs[version]
    src, archive = tmp_path / "src", tmp_path / "archive"
    src.mkdir()
    (src / "a.txt").write_bytes(b"first\n" * 100)
    env = clean_env(None, "dupcore")

    def dup(*args, check=True):
        return run_duplicity([*args, "--no-encryption", "--archive-dir", str(tmp_path / "cache")],
                             env, duplicity=script, python=python, check=check)

    dup("full", str(src), f"file://{archive}")
    (src / "a.txt").write_bytes(b"second\n" * 100)
    os.utime(src / "a.txt", (time.time() + 10, time.time() + 10))
    dup("incremental", str(src), f"file://{archive}")
    manifest = next(p for p in archive.iterdir()
                    if p.name.startswith("duplicity-inc.") and p.name.endswith(".manifest"))
    data = manifest.read_bytes()
    for damaged, code, words in ((b"", 5, b"lists 0 volume(s)"),
                                 (data.replace(b"Hash SHA1", b"Hash S\xbeA1", 1), 6,
                                  b"is damaged and cannot be read")):
        manifest.write_bytes(damaged)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        out = tmp_path / f"out{code}"
        res = dup("restore", f"file://{archive}", str(out), check=False)
        assert res.returncode == code, f"{version}: {res.text()[-3000:]}"
        assert words in res.output and b"Traceback" not in res.output, res.text()[-3000:]


@pytest.mark.parametrize("version", PYPI_VERSIONS)
def test_killed_restore_then_rerun_is_exact(envs, version, tmp_path):
    """3.0.x, 2.2.x and 2.1.x: a restore through the engine killed halfway, rerun with
    ``--force`` (3.0.x refuses the non-empty target, so it goes to the emptied one; 2.2.x and
    2.1.x restore over the partial target) ends exact."""
    from test_interrupted_backups import kill_restore_halfway, rerun_after_kill, restore_chain

    script, python = envs[version]
    env = clean_env(None, "dupcore")

    def run(args, check=True):
        return run_duplicity(args, env, duplicity=script, python=python, check=check)

    src = tmp_path / "src"
    common, url = restore_chain(src, tmp_path / "target", tmp_path / "cache", run)
    at = common.index("--volsize")
    common = common[:at] + common[at + 2:]  # 2.1.x's restore refuses backup-only options
    out = tmp_path / "restored"
    kill_restore_halfway([script, "restore", *common, url, out], env, out, src)
    rerun_after_kill(run, common, url, out, snapshot(src), version == "3.0.7",
                     f"{version}: killed restore, rerun")


# ------------------------------------------------------------------------------ duply


def _duply_conf(profile, source, target, python=None, encrypted=False):
    profile.mkdir(parents=True)
    lines = [
        f"GPG_KEY='{'' if encrypted else 'disabled'}'",
        f"GPG_PW='{PASSPHRASE}'",
        f"TARGET='file://{target}'",
        f"SOURCE='{source}'",
        "VERBOSITY=5",
        "MAX_AGE=1Y",
        f"ARCH_DIR='{profile}/cache'",
        "DUPL_PARAMS=\"$DUPL_PARAMS --volsize 1 --allow-source-mismatch\"",
    ]
    if python:
        lines.append(f"PYTHON='{python}'")
    (profile / "conf").write_text("\n".join(lines) + "\n")
    (profile / "exclude").write_text("")


def _duply(profile, *args, env):
    proc = subprocess.run(["duply", str(profile), *args], env=env, capture_output=True,
                          check=False, timeout=600)
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0, f"duply {' '.join(args)} failed ({proc.returncode}):\n{out}"
    return out


@pytest.mark.parametrize("which", ["3.2.1", "0.8.22"])
def test_duply_round_trip(tmp_path, states, envs, gnupghome, which):
    """duply backs up, restores and verifies through duplicity running on dupcore."""
    if shutil.which("duply") is None:
        pytest.fail("duply is not installed (apt-get install duply; .ci/run does it)")
    env = clean_env(gnupghome)
    python = None
    if which == "3.2.1":
        env["PATH"] = f"{DUPLICITY.parent}:{env.get('PATH', '')}"  # duply runs `duplicity`
    else:
        env["PATH"] = f"/usr/bin:{env.get('PATH', '')}"
        python = envs["0.8.22"][1]
    src = tmp_path / "src"
    subprocess.run(["cp", "-a", states[0][0], os.fsencode(src)], check=True)
    profile = tmp_path / "profile"
    _duply_conf(profile, src, tmp_path / "target", python=python, encrypted=True)
    out = _duply(profile, "full", env=env)
    assert "dupcore " in out and " active on duplicity " in out, out
    assert (f"on duplicity {which}" in out) or (f"({which})" in out), out
    time.sleep(1.1)
    (src / "db" / "main.db").write_bytes(b"changed by duply test\n" * 1000)
    assert any(n.endswith(".difftar.gpg") for n in os.listdir(tmp_path / "target"))
    _duply(profile, "incr", env=env)
    _duply(profile, "verify", env=env)
    _duply(profile, "status", env=env)
    restored = tmp_path / "restored"
    _duply(profile, "restore", str(restored), env=env)
    assert_same_tree(snapshot(src), snapshot(restored), f"duply {which} restore")
