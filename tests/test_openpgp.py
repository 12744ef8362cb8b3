"""OpenPGP in-process against real gpg 2.2: each direction, recipients, hidden recipients,
compressed and not, wrong passphrase, tampered and truncated files, and whole encrypted backups
that stock duplicity + gpg restore, without a gpg process per volume.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time

import pytest
from dupcore import _core
from helpers import PASSPHRASE, assert_same_tree, clean_env, run_duplicity, snapshot
from trees import small_tree

pytestmark = pytest.mark.gpg

PROTECTED = "protected secret key passphrase"
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
    # a key protected by a passphrase, used through gpg-agent's loopback pinentry
    uid = "Test prot <prot@example.invalid>"
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", PROTECTED, "--quick-gen-key", uid,
        "ed25519", "sign", "never")
    fpr = fingerprint(home, uid)
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", PROTECTED, "--quick-add-key", fpr,
        "cv25519", "encr", "never")
    keys["prot"] = fpr
    yield home, keys
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, check=False)


def write(path, data, **kw):
    """Encrypt ``data`` into ``path`` with dupcore; returns close()'s summary."""
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


@pytest.mark.parametrize("algo,level,engine",
                         [("zip", 6, "zlib-rs"), ("zip", None, "zlib-rs"), ("zlib", 6, "zlib-rs"),
                          ("zlib", 9, "zlib-rs"), ("zip", 1, "zlib-rs"), ("zip", 3, "isal"),
                          ("zlib", 1, "isal")],
                         ids=["zip", "uncompressed", "zlib", "zlib-9", "zip-1", "zip-isal",
                              "zlib-isal"])
def test_symmetric_dupcore_to_gpg(keyhome, tmp_path, algo, level, engine):
    """gpg 2.2 decrypts dupcore's symmetric files; packets look like gpg's own defaults, or carry
    the ZLIB packet (`--compress-algo zlib`) that gpg checks including its Adler-32; the same
    with ISA-L writing the deflate stream (DUPCORE_COMPRESS=fast)."""
    if engine not in _core.DEFLATE_ENGINES:
        pytest.skip(f"this build has no {engine} engine")
    home, _keys = keyhome
    p = tmp_path / "f.gpg"
    summary = write(p, DATA, passphrase=PASSPHRASE, compress_level=level, compress_algo=algo,
                    compress_engine=engine)
    assert summary.size == p.stat().st_size and summary.raw_size == len(DATA)
    assert summary.sha1 == hashlib.sha1(p.read_bytes()).hexdigest()
    assert gpg_decrypt(home, p, PASSPHRASE) == DATA
    dump = packets(home, p, PASSPHRASE)
    assert re.search(r"symkey enc packet: version 4, cipher 9, aead 0,s2k 3, hash 2", dump), dump
    assert "mdc_method: 2" in dump and "tag=18" in dump
    number = {"zip": 1, "zlib": 2}[algo]
    assert (f"compressed packet: algo={number}" in dump) == (level is not None), dump
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


def agent_kw(home, passphrase=""):
    """PgpReader/PgpWriter arguments for the agent of ``home`` holding all its secret keys."""
    env = dict(os.environ, GNUPGHOME=str(home))
    sock = subprocess.run(["gpgconf", "--list-dirs", "agent-socket"], env=env,
                          capture_output=True, check=True).stdout.decode().strip()
    return {"agent_socket": sock, "agent_passphrase": passphrase,
            "secret_keyring": gpg(home, "--export").stdout}


def forget_passphrases(home):
    """Clear gpg-agent's passphrase cache, so the next use asks again."""
    subprocess.run(["gpgconf", "--reload", "gpg-agent"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, check=True)


def read_all(path, **kw):
    """Decrypt ``path`` with dupcore; returns (plaintext, signer key ids)."""
    r = _core.PgpReader(str(path), **kw)
    out = r.read(-1)
    r.drain()
    signers = r.signers()
    r.close()
    return out, signers


def keyid_of(home, fpr, capability):
    """Key id (16 hex) of the key of ``fpr`` with ``capability`` ('s' or 'e')."""
    out = gpg(home, "--with-colons", "--list-keys", fpr).stdout.decode()
    for line in out.splitlines():
        f = line.split(":")
        if f[0] in ("pub", "sub") and capability in f[11]:
            return f[4]
    raise AssertionError(f"no {capability} key in {fpr}")


@pytest.mark.parametrize("who", ["rsa", "ecc", "rsa-hidden", "ecc-hidden"])
def test_recipients_gpg_to_dupcore_through_agent(keyhome, tmp_path, who):
    """Files gpg encrypts to a public key decrypt in-process, the secret key used via gpg-agent;
    without the agent they are left to gpg ('unsupported')."""
    home, keys = keyhome
    name, _, hidden = who.partition("-")
    src = tmp_path / "plain"
    src.write_bytes(DATA)
    p = tmp_path / "f.gpg"
    flag = "--hidden-recipient" if hidden else "-r"
    gpg(home, "--always-trust", flag, keys[name], "-o", str(p), "--encrypt", str(src))
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpReader(str(p), passphrase="")
    assert err.value.args[0] == "unsupported"
    assert read_all(p, **agent_kw(home)) == (DATA, [])


def test_protected_secret_key_through_agent(keyhome, tmp_path):
    """A passphrase-protected secret key: the wrong passphrase is a 'badkey' error naming the
    passphrase, before any plaintext; the right one (by loopback, as duplicity does) decrypts."""
    home, keys = keyhome
    src = tmp_path / "plain"
    src.write_bytes(DATA)
    p = tmp_path / "f.gpg"
    gpg(home, "--always-trust", "-r", keys["prot"], "-o", str(p), "--encrypt", str(src))
    forget_passphrases(home)
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpReader(str(p), **agent_kw(home, "not the passphrase"))
    assert err.value.args[0] == "badkey" and "passphrase" in err.value.args[1], err.value.args
    # signing with the wrong passphrase fails when the signature is made, at close
    kw = agent_kw(home, "not the passphrase")
    del kw["secret_keyring"]
    w = _core.PgpWriter(str(tmp_path / "s.gpg"), passphrase=PASSPHRASE, sign_key=keys["prot"],
                        sign_keyring=gpg(home, "--export", keys["prot"]).stdout, **kw)
    w.write(DATA)
    with pytest.raises(_core.OpenPGPError) as err:
        w.close()
    assert err.value.args[0] == "badkey" and "passphrase" in err.value.args[1], err.value.args
    assert read_all(p, **agent_kw(home, PROTECTED)) == (DATA, [])


def test_missing_secret_key_is_a_clear_error(keyhome, tmp_path):
    """A file for a key whose secret half is not in the home is a 'badkey' error naming the key
    id (GPGError in duplicity), before any plaintext; a hidden recipient none of the secret keys
    opens too."""
    home, _keys = keyhome
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    gpg(other, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
        "Other <other@example.invalid>", "ed25519", "sign", "never")
    fpr = fingerprint(other, "other@example.invalid")
    gpg(other, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr,
        "cv25519", "encr", "never")
    p = tmp_path / "f.gpg"
    certs = gpg(other, "--export", fpr).stdout
    write(p, DATA, recipients=[(fpr, False)], keyring=certs)
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpReader(str(p), **agent_kw(home))
    assert err.value.args[0] == "badkey" and "no secret key" in err.value.args[1], err.value.args
    enc_id = keyid_of(other, fpr, "e")
    assert enc_id in err.value.args[1], err.value.args
    write(p, DATA, recipients=[(fpr, True)], keyring=certs)
    with pytest.raises(_core.OpenPGPError) as err:
        _core.PgpReader(str(p), **agent_kw(home))
    assert err.value.args[0] == "badkey", err.value.args
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(other)),
                   capture_output=True, check=False)


@pytest.mark.parametrize("signer", ["rsa", "ecc", "prot"])
@pytest.mark.parametrize("mode", ["symmetric", "recipient"])
def test_signed_dupcore_to_gpg(keyhome, tmp_path, signer, mode):
    """dupcore signs through gpg-agent (one-pass signature, literal, signature inside the
    compressed packet, as gpg --sign --encrypt); gpg reports GOODSIG for the signing key."""
    home, keys = keyhome
    kw = agent_kw(home, PROTECTED if signer == "prot" else "")
    del kw["secret_keyring"]
    kw.update(sign_key=keys[signer], sign_keyring=gpg(home, "--export", keys[signer]).stdout)
    if mode == "symmetric":
        kw["passphrase"] = PASSPHRASE
    else:
        kw.update(recipients=[(keys["ecc"], False)], keyring=gpg(home, "--export", keys["ecc"]).stdout)
    p = tmp_path / "f.gpg"
    write(p, DATA, **kw)
    res = gpg(home, "--pinentry-mode=loopback", "--passphrase", PASSPHRASE, "--status-fd", "2",
              "-o", str(tmp_path / "out"), "--decrypt", str(p))
    assert (tmp_path / "out").read_bytes() == DATA
    status = res.stderr.decode(errors="replace")
    assert f"[GNUPG:] GOODSIG {keyid_of(home, keys[signer], 's')} " in status, status
    assert "onepass_sig packet" in packets(home, p, PASSPHRASE)


@pytest.mark.parametrize("signer", ["rsa", "ecc"])
def test_signed_gpg_to_dupcore(keyhome, tmp_path, signer):
    """dupcore reports the signer of a gpg-signed file the way GOODSIG does (the signing key's
    id), and no signer when it lacks the certificate or the data was signed by nobody."""
    home, keys = keyhome
    src = tmp_path / "plain"
    src.write_bytes(DATA)
    p = tmp_path / "f.gpg"
    gpg(home, "--always-trust", "-r", keys["ecc"], "-u", keys[signer], "--sign", "-o", str(p),
        "--encrypt", str(src))
    certs = gpg(home, "--export", keys[signer]).stdout
    want = keyid_of(home, keys[signer], "s")
    assert read_all(p, keyring=certs, **agent_kw(home)) == (DATA, [want])
    assert read_all(p, **agent_kw(home)) == (DATA, [])


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


def test_parse_gpg_options(monkeypatch):
    """Understood --gpg-options are parsed; anything else sends the file to stock gpg."""
    from dupcore import gpg_settings

    opts = gpg_settings.parse_gpg_options(
        "--cipher-algo=CAST5 --compress-algo zip --compress-level 9 --homedir /x "
        "--s2k-digest-algo SHA256 --s2k-count 1000000 --ignore-mdc-error")
    assert opts == {"--cipher-algo": "CAST5", "--compress-algo": "zip",
                    "--compress-level": "9", "--homedir": "/x",
                    "--s2k-digest-algo": "SHA256", "--s2k-count": "1000000"}
    for bad in ("--armor", "--rfc2440", "--textmode", "--cipher-algo"):
        with pytest.raises(gpg_settings.Fallback):
            gpg_settings.parse_gpg_options(bad)

    class Config:
        compression = True

    assert gpg_settings._compression(Config, {}) == ("zip", 6, "zlib-rs")
    assert gpg_settings._compression(Config, {"--compress-algo": "ZLIB", "-z": "9"}) == (
        "zlib", 9, "zlib-rs")
    assert gpg_settings._compression(Config, {"--compress-algo": "none"})[:2] == ("zip", None)
    assert gpg_settings._compression(Config, {"--compress-level": "0"})[:2] == ("zip", None)
    with pytest.raises(gpg_settings.Fallback, match="bzip2"):
        gpg_settings._compression(Config, {"--compress-algo": "bzip2"})
    # DUPCORE_COMPRESS applies where gpg's options name no level, and gpg's level wins
    monkeypatch.setenv("DUPCORE_COMPRESS", "fast")
    assert gpg_settings._compression(Config, {}) == ("zip", *reversed(
        _core.deflate_profile("fast")))
    assert gpg_settings._compression(Config, {"-z": "5"}) == ("zip", 5, "zlib-rs")
    Config.compression = False
    assert gpg_settings._compression(Config, {"--compress-algo": "zlib"})[:2] == ("zip", None)


# ------------------------------------------------------------------------ whole backups


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


#: gpg runs a backup or restore may make, however many volumes: duplicity's `gpg --version` and
#: its loopback check (`--passphrase test --symmetric -o -` on the word "test"), and dupcore's
#: once-per-session key lookups (`--export`, `--list-secret-keys`).
MAX_GPG_CALLS = 6
LOOPBACK_CHECK = "--passphrase test --symmetric -o -"


def _no_gpg_per_file(calls):
    """No call encrypts, decrypts or signs a file, and their number does not grow with volumes."""
    assert len(calls) <= MAX_GPG_CALLS, calls
    for c in calls:
        if c.endswith(LOOPBACK_CHECK):
            continue
        words = set(c.split())
        assert not words & {"--encrypt", "--decrypt", "--symmetric", "--sign", "-d", "-e", "-c"}, c


@pytest.mark.parametrize("mode", ["symmetric", "recipients", "signed"])
def test_encrypted_backup_without_gpg_per_volume(keyhome, tmp_path, mode):
    """Full + incremental encrypted backups with dupcore start no gpg per volume; stock
    duplicity 3.2.1 with gpg restores and verifies them, and dupcore restores them in-process
    too (public-key ones through gpg-agent, signed ones checking the signer)."""
    home, keys = keyhome
    src = tmp_path / "src"
    small_tree(src)
    bindir, log = _gpg_logger(tmp_path)
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    secrets = {"PASSPHRASE": PASSPHRASE, "SIGN_PASSPHRASE": ""}
    env = clean_env(home, PATH=path, **secrets)
    stock_env = clean_env(home, mode="stock", **secrets)
    url = f"file://{tmp_path / 'target'}"
    extra = {"symmetric": [],
             "recipients": ["--encrypt-key", keys["rsa"], "--hidden-encrypt-key", keys["ecc"]],
             "signed": ["--encrypt-key", keys["rsa"], "--sign-key", keys["ecc"]]}[mode]
    common = ["--archive-dir", str(tmp_path / "cache"), "--name", "t", *extra]
    res = run_duplicity(["full", "-v", "info", "--volsize", "1", *common, str(src), url], env)
    assert "openpgp [" in (res.banner() or ""), res.banner()
    assert "stock gpg (" not in res.text(), res.text()[-3000:]
    vols = [n for n in os.listdir(tmp_path / "target") if ".vol" in n]
    assert len(vols) >= 3, vols
    _no_gpg_per_file(_calls(log))

    time.sleep(1.1)  # duplicity names backups by the second
    (src / "text.txt").write_bytes(b"changed\n" * 1000)
    (src / "new").write_bytes(b"new file\n")
    log.unlink(missing_ok=True)
    run_duplicity(["incremental", *common, str(src), url], env)
    _no_gpg_per_file(_calls(log))

    expected = snapshot(src)
    # stock duplicity + gpg restores what dupcore wrote (checking the signatures when signed)
    out = tmp_path / "restore-stock"
    run_duplicity(["restore", *common, "--archive-dir", str(tmp_path / "cache-stock"), url,
                   str(out)], stock_env)
    assert_same_tree(expected, snapshot(out), "stock restore of a dupcore chain")
    run_duplicity(["verify", *common, url, str(src)], stock_env)
    # and dupcore restores it in-process
    log.unlink(missing_ok=True)
    out2 = tmp_path / "restore-dupcore"
    res = run_duplicity(["restore", "-v", "info", *common, "--archive-dir",
                         str(tmp_path / "cache-dc"), url, str(out2)], env)
    assert_same_tree(expected, snapshot(out2), "dupcore restore")
    _no_gpg_per_file(_calls(log))
    assert "stock gpg (" not in res.text(), res.text()[-3000:]
    if mode == "signed":
        # a restore demanding another signer fails, as with stock gpg's GOODSIG check
        bad = run_duplicity(["restore", "--archive-dir", str(tmp_path / "cache-bad"), "--name",
                             "t", "--sign-key", keys["rsa"], url, str(tmp_path / "bad")], env,
                            check=False)
        assert bad.returncode != 0
        assert "Volume was signed by key" in bad.text(), bad.text()[-2000:]


def test_use_agent_restore_in_process(keyhome, tmp_path):
    """With --use-agent (no passphrase from duplicity) the agent's own cache or pinentry unlocks
    the key: a public-key chain restores in-process, no gpg per volume."""
    home, keys = keyhome
    src = tmp_path / "src"
    small_tree(src)
    url = f"file://{tmp_path / 'target'}"
    common = ["--use-agent", "--name", "t", "--encrypt-key", keys["rsa"]]
    run_duplicity(["full", "--volsize", "1", *common, "--archive-dir", str(tmp_path / "c1"),
                   str(src), url], clean_env(home))
    bindir, log = _gpg_logger(tmp_path)
    env = clean_env(home, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = tmp_path / "out"
    res = run_duplicity(["restore", "-v", "info", *common, "--archive-dir",
                         str(tmp_path / "c2"), url, str(out)], env)
    assert "stock gpg (" not in res.text(), res.text()[-3000:]
    assert_same_tree(snapshot(src), snapshot(out), "--use-agent restore")
    _no_gpg_per_file(_calls(log))


def test_stock_chain_restores_through_dupcore_in_process(keyhome, tmp_path):
    """A chain written by stock duplicity + gpg (symmetric) restores with dupcore, no gpg per
    volume, and a wrong passphrase fails cleanly."""
    home, _keys = keyhome
    src = tmp_path / "src"
    small_tree(src)
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


@pytest.mark.parametrize("algo", ["zlib", "bzip2"])
def test_compress_algo_option_end_to_end(keyhome, tmp_path, algo):
    """`--gpg-options=--compress-algo=zlib` is written in-process (ZLIB packet), bzip2 goes to
    stock gpg with an Info line; stock duplicity + gpg restores both."""
    home, _keys = keyhome
    src = tmp_path / "src"
    small_tree(src)
    url = f"file://{tmp_path / 'target'}"
    common = ["--name", "t", f"--gpg-options=--compress-algo={algo}"]
    res = run_duplicity(["full", "-v", "info", *common, "--archive-dir", str(tmp_path / "cache"),
                         str(src), url], clean_env(home, PASSPHRASE=PASSPHRASE))
    fallback = [ln for ln in res.text().splitlines() if "stock gpg (" in ln]
    if algo == "zlib":
        assert not fallback, fallback
        vol = next((tmp_path / "target").glob("*.vol1.difftar.gpg"))
        assert "compressed packet: algo=2" in packets(home, vol, PASSPHRASE)
    else:
        assert fallback and all("--compress-algo bzip2" in ln for ln in fallback), fallback
    out = tmp_path / "restore"
    run_duplicity(["restore", *common, "--archive-dir", str(tmp_path / "cache-stock"), url,
                   str(out)], clean_env(home, mode="stock", PASSPHRASE=PASSPHRASE))
    assert_same_tree(snapshot(src), snapshot(out), f"stock restore of a {algo} chain")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_engine_errors_arrive_as_named_exceptions(tmp_path):
    """A missing file is FileNotFoundError with its errno; input gpg must read is
    OpenPGPUnsupported; a wrong passphrase OpenPGPBadKey; damage OpenPGPCorrupt."""
    with pytest.raises(FileNotFoundError) as err:
        _core.PgpReader(str(tmp_path / "missing.gpg"), passphrase="x")
    assert err.value.errno == errno.ENOENT
    with pytest.raises(FileNotFoundError) as err:
        _core.GzipReader(str(tmp_path / "missing.gz"))
    assert err.value.errno == errno.ENOENT
    armored = tmp_path / "armored.asc"
    armored.write_bytes(b"-----BEGIN PGP MESSAGE-----\n")
    with pytest.raises(_core.OpenPGPUnsupported):
        _core.PgpReader(str(armored), passphrase="x")
    sealed = tmp_path / "sealed.gpg"
    write(sealed, DATA, passphrase=PASSPHRASE)
    with pytest.raises(_core.OpenPGPBadKey):
        read(sealed, "not the passphrase")
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 1
    sealed.write_bytes(bytes(data))
    with pytest.raises(_core.OpenPGPCorrupt):
        read(sealed, PASSPHRASE)
    for cls in (_core.OpenPGPUnsupported, _core.OpenPGPConfig, _core.OpenPGPBadKey,
                _core.OpenPGPCorrupt):
        assert issubclass(cls, _core.OpenPGPError)

