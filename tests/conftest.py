"""pytest fixtures shared by the tests: gpg homes, a worker pool, source trees."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess

import pytest
from helpers import DUPLICITY, KEYS, snapshot
from trees import build_states

# ------------------------------------------------------------------------------ fixtures


def _gpg(home, *args, stdin=None):
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run(["gpg", "--batch", "--quiet", *args], env=env, input=stdin,
                          capture_output=True, check=True)


@pytest.fixture(scope="session")
def gnupghome(tmp_path_factory):
    """A throwaway gpg home with the fixture keys (unprotected secret keys) and full trust."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not installed (apt-get install gnupg gpg-agent)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    _gpg(home, "--import", str(KEYS / "rsa3072-secret.asc"), str(KEYS / "ed25519-secret.asc"))
    _gpg(home, "--import-ownertrust", stdin=(KEYS / "ownertrust.txt").read_bytes())
    yield home
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, check=False)


@pytest.fixture(scope="session")
def pool():
    """A two-worker pool: the machine has two cores, and duplicity runs are mostly single-core."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        yield ex


@pytest.fixture(scope="session")
def duplicity_cli():
    """Path of the duplicity script of this interpreter's environment (fails if missing)."""
    if not DUPLICITY.exists():
        pytest.fail(f"{DUPLICITY} not found: install duplicity into this environment")
    return DUPLICITY


@pytest.fixture(scope="session")
def states(tmp_path_factory):
    """The three source states and their snapshots."""
    base = tmp_path_factory.mktemp("e2e-src")
    paths = build_states(base)
    return paths, [snapshot(p) for p in paths]
