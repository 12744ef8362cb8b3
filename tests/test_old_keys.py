"""Keys of older vintages, as long-time duplicity users have them, work in-process as with gpg.

Each key is made by gpg 2.2 with a faked clock and gpg 1.4-era options: SHA-1 self-signatures
and bindings (RSA-2048 from 2011, like duplicity's own test keys; DSA-1024 with ElGamal-2048
from 2009), and a key that expired in 2014 and was extended in 2015. For each, a signed and
encrypted backup is made by dupcore and by stock duplicity, and each is restored by both:
dupcore must do whatever stock does (same exit code, same tree), and for the RSA keys it must do
it without handing any file to stock gpg. Keys without key flags (PGP-era) cannot be made with
gpg; the Rust unit tests build them with sequoia (src/pgp/tests.rs).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot

pytestmark = [pytest.mark.gpg, pytest.mark.e2e]

# name -> (primary algo, subkey algo, creation time, expiry step or None)
VINTAGES = {
    "rsa2048-sha1-2011": ("rsa2048", "rsa2048", "20111104T120000", None),
    "dsa1024-elg2048-2009": ("dsa1024", "elg2048", "20090301T120000", None),
    "rsa2048-expired-2014-extended": ("rsa2048", "rsa2048", "20120601T120000", "20150101T120000"),
}
# Vintages whose every file must be read and written in-process (no stock gpg fallback).
IN_PROCESS = {"rsa2048-sha1-2011", "rsa2048-expired-2014-extended"}
FALLBACK = "stock gpg ("


def gpg(home, *args, check=True):
    """gpg in ``home`` with an empty loopback passphrase (the secret keys are unprotected)."""
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run(["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback",
                           "--passphrase", "", *args], env=env, capture_output=True, check=check)


def make_key(home, name, prim, sub, created, extended):
    """Generate one key with a faked clock and SHA-1 signatures; returns its fingerprint."""
    uid = f"{name} <{name}@example.invalid>"
    old = ["--faked-system-time", f"{created}!", "--cert-digest-algo", "SHA1",
           "--digest-algo", "SHA1"]
    expiry = "2y" if extended else "never"
    gpg(home, *old, "--quick-gen-key", uid, prim, "sign", expiry)
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    fpr = next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr:"))
    gpg(home, *old, "--quick-add-key", fpr, sub, "encr", expiry)
    if extended:
        # gpg's "*" skips expired subkeys: name each one.
        out = gpg(home, "--with-colons", "--list-keys", fpr).stdout.decode()
        subs = [ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr:")][1:]
        later = ["--faked-system-time", f"{extended}!", "--cert-digest-algo", "SHA1"]
        gpg(home, *later, "--quick-set-expire", fpr, "never")
        gpg(home, *later, "--quick-set-expire", fpr, "never", *subs)
    return fpr


@pytest.fixture(scope="module")
def vintage_home(tmp_path_factory):
    """A gpg home holding one key of each vintage, trusted ultimately."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not installed (apt-get install gnupg gpg-agent)")
    home = tmp_path_factory.mktemp("vintage-keys")
    home.chmod(0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    keys = {name: make_key(home, name, *spec) for name, spec in VINTAGES.items()}
    trust = "".join(f"{fpr}:6:\n" for fpr in keys.values()).encode()
    subprocess.run(["gpg", "--batch", "--import-ownertrust"], input=trust, check=True,
                   env=dict(os.environ, GNUPGHOME=str(home)), capture_output=True)
    yield home, keys
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, check=False)


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    """A small tree spanning two volumes."""
    src = tmp_path_factory.mktemp("vintage-src")
    (src / "dir").mkdir()
    (src / "dir" / "small.txt").write_bytes(b"old keys still restore\n" * 100)
    (src / "big.bin").write_bytes(os.urandom(1_500_000) + b"x" * 1_000_000)
    os.symlink("dir/small.txt", src / "link")
    return src


@pytest.mark.parametrize("name", sorted(VINTAGES))
def test_signed_backups_with_old_keys_restore_as_with_gpg(name, vintage_home, source_tree,
                                                          tmp_path):
    """Backups by dupcore and by stock, each restored by both: dupcore matches stock."""
    home, keys = vintage_home
    fpr = keys[name]
    keyid = fpr[-16:]
    opts = ["--encrypt-key", fpr, "--sign-key", keyid, "--volsize", "2"]
    expected = snapshot(source_tree)
    for maker in ("dupcore", "stock"):
        url = f"file://{tmp_path}/{maker}-archive"
        env = clean_env(home, maker, PASSPHRASE="", SIGN_PASSPHRASE="")
        made = run_duplicity(["full", "-v", "info", *opts, str(source_tree), url], env)
        if maker == "dupcore" and name in IN_PROCESS:
            assert FALLBACK not in made.text(), made.text()
        outcomes = {}
        for reader in ("stock", "dupcore"):
            target = tmp_path / f"{maker}-by-{reader}"
            env = clean_env(home, reader, PASSPHRASE="", SIGN_PASSPHRASE="")
            res = run_duplicity(["restore", "-v", "info", *opts, url, str(target)], env,
                                check=False)
            outcomes[reader] = res
            if reader == "dupcore" and name in IN_PROCESS:
                assert FALLBACK not in res.text(), res.text()
        stock, ours = outcomes["stock"], outcomes["dupcore"]
        assert ours.returncode == stock.returncode, (
            f"{name}, backup by {maker}: stock exits {stock.returncode}, dupcore "
            f"{ours.returncode}\n{ours.text()[-3000:]}")
        if stock.returncode == 0:
            assert_same_tree(expected, snapshot(tmp_path / f"{maker}-by-dupcore"),
                             f"{name}, backup by {maker}, restored by dupcore")
        if name in IN_PROCESS:
            assert stock.returncode == 0, stock.text()[-3000:]
