"""OpenPGP in-process against real gpg 2.2: each direction, recipients, hidden recipients,
compressed and not, wrong passphrase, tampered and truncated files, and whole encrypted backups
that stock duplicity + gpg restore, without a gpg process per volume.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest
from conftest import PASSPHRASE, assert_same_tree, clean_env, run_duplicity, snapshot
from dupcore import _core

DATA = bytes(random.Random(5).getrandbits(8) for _ in range(300_000)) + b"tar-ish text " * 80_000


def gpg(home, *args, stdin=None, check=True):
    """Run gpg in ``home``; returns the CompletedProcess."""
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run(["gpg", "--batch", "--no-tty", *args], env=env, input=stdin,
                          capture_output=True, check=check)


def fingerprint(home, uid):
    """Fingerprint of the primary key with user id ``uid``."""
    out = gpg(home, "--with-colons", "--list-keys", uid).stdout.decode()
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def keyhome(tmp_path_factory):
    """A throwaway gpg home with freshly generated RSA-3072 and Ed25519/cv25519 keys."""
    home = tmp_path_factory.mktemp("pgp-keys")
    home.chmod(0o700)
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    keys = {}
    for name, prim, sub in (("rsa", "rsa3072", "rsa3072"), ("ecc", "ed25519", "cv25519")):
        uid = f"Test {name} <{name}@example.invalid>"
        gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid,
            prim, "sign", "never")
        fpr = fingerprint(home, uid)
        gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr,
            sub, "encr", "never")
        keys[name] = fpr
    yield home, keys
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, check=False)


def write(path, data, **kw):
    """Encrypt ``data`` into ``path`` with dupcore; returns close()'s tuple."""
    w = _core.PgpWriter(str(path), **kw)
    for i in range(0, len(data), 70_001):
        w.write(data[i:i + 70_001])
    return w.close()


def read(path, passphrase):
    """Decrypt ``path`` with dupcore."""
    r = _core.PgpReader(str(path), passphrase=passphrase)
    out = bytearray()
    while True:
        b = r.read(100_000)
        if not b:
            break
        out += b
    r.close()
    return bytes(out)


def gpg_decrypt(home, path, passphrase=""):
    """Decrypt with gpg exactly as duplicity does (loopback passphrase, ignore-mdc-error)."""
    return gpg(home, "--pinentry-mode=loopback", "--passphrase", passphrase,
               "--ignore-mdc-error", "--decrypt", str(path)).stdout


def packets(home, path, passphrase=""):
    """gpg --list-packets output."""
    return gpg(home, "--pinentry-mode=loopback", "--passphrase", passphrase, "--list-packets",
               str(path)).stdout.decode()


@pytest.mark.parametrize("level", [6, None], ids=["zip", "uncompressed"])
def test_symmetric_dupcore_to_gpg(keyhome, tmp_path, level):
    """gpg 2.2 decrypts dupcore's symmetric files; packets look like gpg's own defaults."""
    home, _keys = keyhome
    p = tmp_path / "f.gpg"
    size, _sha1, _md5, raw = write(p, DATA, passphrase=PASSPHRASE, compress_level=level)
    assert size == p.stat().st_size and raw == len(DATA)
    assert gpg_decrypt(home, p, PASSPHRASE) == DATA
    dump = packets(home, p, PASSPHRASE)
    assert re.search(r"symkey enc packet: version 4, cipher 9, aead 0,s2k 3, hash 2", dump), dump
    assert "mdc_method: 2" in dump and "tag=18" in dump
    assert ("compressed packet: algo=1" in dump) == (level is not None), dump
    assert 'mode b (62), created' in dump


@pytest.mark.parametrize("compress", ["zip", "zlib", "bzip2", "none"])
@pytest.mark.parametrize("cipher", ["AES256", "AES128", "CAST5", "TWOFISH", "3DES"])
def test_symmetric_gpg_to_dupcore(keyhome, tmp_path, compress, cipher):
    """dupcore decrypts what gpg writes with each cipher and compression algorithm."""
    home, _keys = keyhome
    p = tmp_path / "f.gpg"
    src = tmp_path / "plain"
    src.write_bytes(DATA)
    gpg(home, "--pinentry-mode=loopback", "--passphrase", PASSPHRASE, "--force-mdc",
        "--cipher-algo", cipher, "--compress-algo", compress, "-o", str(p), "--symmetric",
        str(src))
    assert read(p, PASSPHRASE) == DATA


@pytest.mark.parametrize("who", ["rsa", "ecc", "rsa-hidden", "both"])
@pytest.mark.parametrize("level", [6, None], ids=["zip", "uncompressed"])
def test_recipients_dupcore_to_gpg(keyhome, tmp_path, who, level):
    """dupcore encrypts to RSA-3072 and cv25519 keys (and hidden ones); gpg decrypts."""
    home, keys = keyhome
    if who == "both":
        recipients = [(keys["rsa"], False), (keys["ecc"], True)]
    else:
        recipients = [(keys[who.split("-")[0]], who.endswith("hidden"))]
    keyring = gpg(home, "--export", *[r for r, _h in recipients]).stdout
    p = tmp_path / "f.gpg"
    write(p, DATA, recipients=recipients, keyring=keyring, compress_level=level)
    assert gpg_decrypt(home, p) == DATA
    dump = packets(home, p)
    assert dump.count(":pubkey enc packet: version 3") == len(recipients)
    hidden = any(h for _r, h in recipients)
    assert ("keyid 0000000000000000" in dump) == hidden, dump


def test_unknown_recipient_is_a_config_error(keyhome, tmp_path):
    """A recipient missing from the keyring is reported (and stock gpg handles the file)."""
    home, keys = keyhome
    keyring = gpg(home, "--export", keys["rsa"]).stdout
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpWriter(str(tmp_path / "f.gpg"), recipients=[("DEADBEEFDEADBEEF", False)],
                        keyring=keyring)
    assert err.value.args[0] == "config"


def test_public_key_decryption_is_left_to_gpg(keyhome, tmp_path):
    """Files encrypted to a public key are 'unsupported' in-process (secret keys stay in gpg)."""
    home, keys = keyhome
    src = tmp_path / "plain"
    src.write_bytes(DATA)
    p = tmp_path / "f.gpg"
    gpg(home, "--always-trust", "-r", keys["ecc"], "-o", str(p), "--encrypt", str(src))
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpReader(str(p), passphrase="")
    assert err.value.args[0] == "unsupported"


def test_gpgfile_errors_are_gpgerror(tmp_path):
    """Wrong passphrase, tampered and truncated files raise duplicity's GPGError naming the file."""
    import duplicity.gpg as dgpg
    from dupcore import openpgp

    p = tmp_path / "vol.gpg"
    write(p, DATA, passphrase=PASSPHRASE, s2k_count=65536)

    class Profile:  # the GPGProfile attributes GPGFile reads (the real one runs gpg --version)
        def __init__(self, passphrase):
            self.passphrase = passphrase
            self.sign_key = None
            self.recipients = []
            self.hidden_recipients = []

    good = Profile(PASSPHRASE)

    class P:  # duplicity.path.Path stand-in: GPGFile only uses .name
        def __init__(self, name):
            self.name = os.fsencode(name)

    f = openpgp.GPGFile(False, P(p), good)
    assert isinstance(f, openpgp.GPGFile)
    assert f.read() == DATA
    f.close()
    assert f.get_signature() is None

    with pytest.raises(dgpg.GPGError, match=r"vol\.gpg.*passphrase"):
        openpgp.GPGFile(False, P(p), Profile("wrong"))

    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    t = tmp_path / "tampered.gpg"
    t.write_bytes(bytes(data))
    with pytest.raises(dgpg.GPGError, match=r"tampered\.gpg"):
        f = openpgp.GPGFile(False, P(t), good)
        f.read()
        f.close()

    c = tmp_path / "cut.gpg"
    c.write_bytes(p.read_bytes()[:-2000])
    with pytest.raises(dgpg.GPGError, match=r"cut\.gpg.*(truncated|failed)"):
        f = openpgp.GPGFile(False, P(c), good)
        f.read()
        f.close()


def test_parse_gpg_options():
    """Understood --gpg-options are parsed; anything else sends the file to stock gpg."""
    from dupcore import openpgp

    opts = openpgp.parse_gpg_options(
        "--cipher-algo=CAST5 --compress-algo zip --compress-level 9 --homedir /x "
        "--s2k-digest-algo SHA256 --s2k-count 1000000 --ignore-mdc-error")
    assert opts == {"--cipher-algo": "CAST5", "--compress-algo": "zip",
                    "--compress-level": "9", "--homedir": "/x",
                    "--s2k-digest-algo": "SHA256", "--s2k-count": "1000000"}
    for bad in ("--armor", "--rfc2440", "--textmode", "--cipher-algo"):
        with pytest.raises(openpgp.Fallback):
            openpgp.parse_gpg_options(bad)


# ------------------------------------------------------------------------ whole backups


def _tree(root):
    rnd = random.Random(11)
    (root / "d").mkdir(parents=True)
    (root / "d" / "random.bin").write_bytes(rnd.randbytes(3_500_000))
    (root / "text.txt").write_bytes(b"".join(b"line %d of some text\n" % i
                                             for i in range(200_000)))
    (root / "small").write_bytes(b"x" * 100)


def _gpg_logger(tmp_path):
    """A `gpg` first on PATH that logs each call and runs the real gpg."""
    real = shutil.which("gpg")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gpg-calls.log"
    script = bindir / "gpg"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bindir, log


def _calls(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("mode", ["symmetric", "recipients"])
def test_encrypted_backup_without_gpg_per_volume(keyhome, tmp_path, mode):
    """Full + incremental encrypted backups with dupcore start no gpg per volume; stock
    duplicity 3.2.1 with gpg restores and verifies them, and so does dupcore."""
    home, keys = keyhome
    src = tmp_path / "src"
    _tree(src)
    bindir, log = _gpg_logger(tmp_path)
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = clean_env(home, PASSPHRASE=PASSPHRASE, PATH=path)
    stock_env = clean_env(home, mode="stock", PASSPHRASE=PASSPHRASE)
    url = f"file://{tmp_path / 'target'}"
    extra = ["--encrypt-key", keys["rsa"], "--hidden-encrypt-key", keys["ecc"]] \
        if mode == "recipients" else []
    common = ["--archive-dir", str(tmp_path / "cache"), "--name", "t", *extra]
    res = run_duplicity(["full", "-v", "info", "--volsize", "1", *common, str(src), url], env)
    assert "openpgp [" in (res.banner() or ""), res.banner()
    assert "stock gpg (" not in res.text(), res.text()[-3000:]
    vols = [n for n in os.listdir(tmp_path / "target") if ".vol" in n]
    assert len(vols) >= 3, vols
    calls = _calls(log)
    assert len(calls) <= 4, calls
    assert not any("--symmetric" in c.split() and "-o" not in c.split() for c in calls) \
        and not any(c.split()[-1:] in (["--encrypt"], ["--decrypt"]) for c in calls), calls

    time.sleep(1.1)  # duplicity names backups by the second
    (src / "text.txt").write_bytes(b"changed\n" * 1000)
    (src / "new").write_bytes(b"new file\n")
    log.unlink(missing_ok=True)
    run_duplicity(["incremental", *common, str(src), url], env)
    assert len(_calls(log)) <= 4, _calls(log)

    expected = snapshot(src)
    # stock duplicity + gpg restores what dupcore wrote
    out = tmp_path / "restore-stock"
    run_duplicity(["restore", *common, "--archive-dir", str(tmp_path / "cache-stock"), url,
                   str(out)], stock_env)
    assert_same_tree(expected, snapshot(out), "stock restore of a dupcore chain")
    run_duplicity(["verify", *common, url, str(src)], stock_env)
    # and dupcore restores it (symmetric in-process; public-key decryption through gpg)
    log.unlink(missing_ok=True)
    out2 = tmp_path / "restore-dupcore"
    res = run_duplicity(["restore", "-v", "info", *common, "--archive-dir",
                         str(tmp_path / "cache-dc"), url, str(out2)], env)
    assert_same_tree(expected, snapshot(out2), "dupcore restore")
    if mode == "symmetric":
        assert len(_calls(log)) <= 4, _calls(log)
        assert "stock gpg (" not in res.text()
    else:
        assert "stock gpg (public-key encrypted" in res.text()


def test_stock_chain_restores_through_dupcore_in_process(keyhome, tmp_path):
    """A chain written by stock duplicity + gpg (symmetric) restores with dupcore, no gpg per
    volume, and a wrong passphrase fails cleanly."""
    home, _keys = keyhome
    src = tmp_path / "src"
    _tree(src)
    url = f"file://{tmp_path / 'target'}"
    common = ["--archive-dir", str(tmp_path / "cache"), "--name", "t"]
    run_duplicity(["full", "--volsize", "1", *common, str(src), url],
                  clean_env(home, mode="stock", PASSPHRASE=PASSPHRASE))
    bindir, log = _gpg_logger(tmp_path)
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = clean_env(home, PASSPHRASE=PASSPHRASE, PATH=path)
    out = tmp_path / "restore"
    run_duplicity(["restore", *common, url, str(out)], env)
    assert_same_tree(snapshot(src), snapshot(out), "dupcore restore of a stock chain")
    assert len(_calls(log)) <= 4, _calls(log)
    bad = run_duplicity(["restore", "--archive-dir", str(tmp_path / "cache2"), "--name", "t",
                         url, str(tmp_path / "bad")],
                        clean_env(home, PASSPHRASE="wrong"), check=False)
    assert bad.returncode != 0
    assert "passphrase" in bad.text(), bad.text()[-2000:]


def test_fallback_is_logged_per_file(keyhome, tmp_path):
    """Options dupcore does not serve go to stock gpg with one Info line naming the reason."""
    home, _keys = keyhome
    src = tmp_path / "src"
    (src).mkdir()
    (src / "f").write_bytes(b"data" * 1000)
    url = f"file://{tmp_path / 'target'}"
    env = clean_env(home, PASSPHRASE=PASSPHRASE)
    res = run_duplicity(["full", "-v", "info", "--gpg-options=--armor", "--name", "t",
                         "--archive-dir", str(tmp_path / "cache"), str(src), url], env)
    assert "stock gpg (--gpg-options entry '--armor' is not handled in-process)" in res.text()
    out = tmp_path / "restore"
    run_duplicity(["restore", "--name", "t", "--archive-dir", str(tmp_path / "cache"), url,
                   str(out)], env)
    assert (out / "f").read_bytes() == b"data" * 1000


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
