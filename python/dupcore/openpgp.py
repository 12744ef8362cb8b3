"""OpenPGP in-process: ``gpg.GPGFile`` and ``gpg.GPGWriteFile`` without a gpg process per file.

Symmetric encryption and decryption, public-key encryption to ``--encrypt-key`` /
``--hidden-encrypt-key`` recipients, and signing with ``--sign-key`` run in Rust
(sequoia-openpgp): SKESK v4 or PKESK v3, SEIPD v1 with MDC, a ZIP compressed packet deflated in
parallel, like gpg 2.2 writes them. Secret keys stay in the user's gpg-agent, which decrypts
session keys and makes signatures over its socket (sequoia-gpg-agent). Anything dupcore does not
serve in-process goes, per file, to duplicity's own gpg classes, with one Info line naming the
reason: ``--use-gpgsm``, ``--gpg-binary``, unknown ``--gpg-options``, no reachable agent, keys
sequoia cannot use (ElGamal), and so on. SED packets without MDC (gpg 1.x) are read in-process. Wrong passphrases, missing secret keys and damaged files raise
duplicity's ``GPGError`` with one line naming the file and the problem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

from dupcore import _core, volumes

#: gpg 2.2's S2K defaults for symmetric encryption (observed with --list-packets).
#: Stock GPGWriteFile measures the file while gpg still holds data in its pipe, input buffer and
#: deflate state, so its volumes end past the target by about this much plaintext, compressed
#: (gpg 2.2: 86-99 KB on incompressible data, proportionally less on compressible data).
#: dupcore knows its exact size and adds the same margin, so volumes split about where stock's do.
GPG_BUFFER_LAG = 90 * 1024


def _settled_size(writer):
    """The file's size once the compressors caught up: what is written, plus the part of a
    deflate chunk still being filled at the ratio measured so far."""
    writer.flush()
    return writer.estimated_size()


def _stock_size(size, plain):
    """The file size stock's os.stat would show for dupcore's ``size`` after ``plain`` bytes of
    plaintext: dupcore's size less gpg's typical lag."""
    if plain <= 0:
        return size
    return size - int(GPG_BUFFER_LAG * min(1.0, size / plain))

_stock = {}
_logged = set()
_keyrings = {}  # (home, key ids) -> exported public keys
_agents = {}  # home -> (agent socket, certificates of the secret keys)
_lock = threading.Lock()


class Fallback(Exception):
    """This file goes to stock gpg; the message says why."""


def _modules():
    from duplicity import gpg, log

    try:
        from duplicity import config
    except ImportError:  # duplicity < 0.8.23 keeps its settings in duplicity.globals
        from duplicity import globals as config
    return config, gpg, log


def _info_fallback(name, reason):
    _config, _gpg, log = _modules()
    key = (name, reason)
    if key in _logged:
        return
    _logged.add(key)
    if len(_logged) > 10000:
        _logged.clear()
    log.Info(f"dupcore openpgp: {name}: stock gpg ({reason})")


def _fsname(path):
    name = getattr(path, "name", path)
    return os.fsdecode(name)


def parse_gpg_options(text):
    """Settings dupcore understands from ``--gpg-options``; raises Fallback on anything else."""
    out = {}
    tokens = (text or "").split()
    valued = {"--cipher-algo", "--compress-algo", "--compress-level", "-z", "--homedir",
              "--s2k-cipher-algo", "--s2k-digest-algo", "--s2k-mode", "--s2k-count",
              "--bzip2-compress-level", "--personal-cipher-preferences",
              "--personal-compress-preferences", "--personal-digest-preferences",
              "--digest-algo", "--trust-model"}
    flags = {"--ignore-mdc-error", "--force-mdc", "--no-secmem-warning", "--batch", "--no-tty",
             "--quiet", "-q", "--verbose", "-v", "--always-trust", "--yes", "--no-greeting",
             "--no-permission-warning", "--no-auto-check-trustdb", "--no-options"}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and "=" in tok:
            opt, val = tok.split("=", 1)
        elif tok in valued:
            if i + 1 >= len(tokens):
                raise Fallback(f"--gpg-options {tok} without a value")
            opt, val = tok, tokens[i + 1]
            i += 1
        else:
            opt, val = tok, None
        i += 1
        if opt in flags and val is None:
            continue
        if opt not in valued or val is None:
            raise Fallback(f"--gpg-options entry {tok!r} is not handled in-process")
        out[opt] = val
    return out


def _compression(config, opts):
    """(algorithm, level) of the compressed packet; level None writes none."""
    if not getattr(config, "compression", True):
        return "zip", None
    algo = opts.get("--compress-algo", "zip").lower()
    if algo in ("none", "0", "uncompressed"):
        return "zip", None
    if algo in ("zip", "1"):
        algo = "zip"
    elif algo in ("zlib", "2"):
        algo = "zlib"
    else:
        raise Fallback(f"--compress-algo {algo} (dupcore writes ZIP, ZLIB or none)")
    level = opts.get("--compress-level", opts.get("-z"))
    if level is None:
        return algo, _core.DEFLATE_LEVEL
    try:
        level = int(level)
    except ValueError:
        raise Fallback(f"--compress-level {level}") from None
    if level <= 0:
        return algo, None
    return algo, min(level, 9)


def _common_checks(config):
    if getattr(config, "use_gpgsm", False):
        raise Fallback("--use-gpgsm")
    binary = getattr(config, "gpg_binary", None)
    if binary is not None:
        default = shutil.which("gpg")
        if default is None or os.path.realpath(binary) != os.path.realpath(default):
            raise Fallback(f"--gpg-binary {binary}")
    return parse_gpg_options(getattr(config, "gpg_options", ""))


def _gpg_env(opts):
    home = opts.get("--homedir")
    env = dict(os.environ)
    if home:
        env["GNUPGHOME"] = home
    return env


def _run(cmd, env, what):
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Fallback(f"{what}: {exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise Fallback(f"{what}: {err[-1] if err else f'exit status {proc.returncode}'}")
    return proc.stdout


def _run_gpg(config, opts, args, what):
    """Output of one ``gpg --batch`` run in the user's GnuPG home; Fallback if it fails."""
    binary = getattr(config, "gpg_binary", None) or shutil.which("gpg") or "gpg"
    return _run([binary, "--batch", "--no-tty", *args], _gpg_env(opts), what)


def _home(opts):
    return opts.get("--homedir") or os.environ.get("GNUPGHOME")


def _keyring(config, opts, ids):
    """Binary public keys of ``ids`` from the user's GnuPG home (one ``gpg --export`` each set)."""
    key = (_home(opts), tuple(ids))
    with _lock:
        if key in _keyrings:
            return _keyrings[key]
    certs = _run_gpg(config, opts, ["--export", *ids], "cannot export public keys")
    if not certs:
        raise Fallback("gpg --export found no public keys for the recipients")
    with _lock:
        _keyrings[key] = certs
    return certs


def agent_settings(config, opts, profile):
    """(socket, certificates of the secret keys) of the user's gpg-agent, found once per home.

    Three short processes per session (``gpgconf --list-dirs``, ``gpg --list-secret-keys``,
    ``gpg --export``) instead of one gpg per volume; raises Fallback when no agent is usable.
    """
    version = tuple(getattr(profile, "gpg_version", (2, 2)) or (2, 2))
    if version[:2] < (2, 1):
        raise Fallback(f"gpg {'.'.join(map(str, version))} has no gpg-agent for secret keys")
    home = _home(opts)
    with _lock:
        if home in _agents:
            return _agents[home]
    env = _gpg_env(opts)
    gpgconf = shutil.which("gpgconf")
    if gpgconf is None:
        raise Fallback("gpgconf not found, so gpg-agent cannot be located")
    socket = _run([gpgconf, "--list-dirs", "agent-socket"], env, "gpgconf").decode().strip()
    subprocess.run([gpgconf, "--launch", "gpg-agent"], env=env, capture_output=True,
                   timeout=120, check=False)
    if not socket or not os.path.exists(socket):
        raise Fallback(f"gpg-agent socket {socket!r} not found")
    listing = _run_gpg(config, opts, ["--with-colons", "--list-secret-keys"],
                   "gpg --list-secret-keys").decode(errors="replace")
    fprs, in_sec = [], False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb"):
            in_sec = fields[0] == "sec"
        elif fields[0] == "fpr" and in_sec:
            fprs.append(fields[9])
            in_sec = False
    certs = b""
    if fprs:
        certs = _run_gpg(config, opts, ["--export", *fprs], "gpg --export")
    result = (socket, certs)
    with _lock:
        _agents[home] = result
    return result


def _agent_passphrase(config, passphrase):
    """What the agent gets by loopback: nothing with --use-agent (its cache or pinentry)."""
    if getattr(config, "use_agent", False):
        return None
    return passphrase or ""


def encrypt_settings(profile):
    """Keyword arguments for ``_core.PgpWriter``; raises Fallback when stock gpg must encrypt."""
    config, _gpg, _log = _modules()
    opts = _common_checks(config)
    if opts.get("--s2k-mode", "3") != "3":
        raise Fallback(f"--s2k-mode {opts['--s2k-mode']}")
    algo, level = _compression(config, opts)
    kw = {"compress_algo": algo, "compress_level": level, "mtime": int(time.time()) & 0xFFFFFFFF}
    recipients = [(r, False) for r in profile.recipients or []]
    recipients += [(r, True) for r in profile.hidden_recipients or []]
    if recipients:
        kw["recipients"] = recipients
        kw["keyring"] = _keyring(config, opts, [r for r, _h in recipients])
        kw["cipher"] = opts.get("--cipher-algo")
    else:
        if profile.passphrase is None:
            raise Fallback("no passphrase")
        kw["passphrase"] = profile.passphrase
        kw["cipher"] = opts.get("--cipher-algo", opts.get("--s2k-cipher-algo"))
        kw["s2k_digest"] = opts.get("--s2k-digest-algo")
        try:
            count = opts.get("--s2k-count")
            if count is not None:
                if int(count) < 0:
                    raise ValueError(count)
                kw["s2k_count"] = min(int(count), 0xFFFFFFFF)  # the engine clamps as gpg does
        except ValueError:
            raise Fallback(f"--s2k-count {opts['--s2k-count']}") from None
    if profile.sign_key:
        socket, _certs = agent_settings(config, opts, profile)
        kw["sign_key"] = profile.sign_key
        kw["sign_keyring"] = _keyring(config, opts, [profile.sign_key])
        kw["agent_socket"] = socket
        kw["agent_passphrase"] = _agent_passphrase(
            config, getattr(profile, "signing_passphrase", None) or profile.passphrase)
    return kw


def decrypt_settings(profile):
    """Keyword arguments for ``_core.PgpReader``; raises Fallback when stock gpg must decrypt.

    Secret-key settings (the agent) are added by ``with_agent`` once a file needs them.
    """
    config, _gpg, _log = _modules()
    opts = _common_checks(config)
    if getattr(profile, "encrypt_secring", None):
        raise Fallback("--encrypt-secret-keyring")
    kw = {"passphrase": profile.passphrase}
    if profile.sign_key:
        kw["keyring"] = _keyring(config, opts, [profile.sign_key])
    with _lock:
        known = _home(opts) in _agents
    if known:  # public-key files seen before: no first try without the agent
        kw = _add_agent(config, opts, profile, kw)
    return kw


def _add_agent(config, opts, profile, kw):
    socket, certs = agent_settings(config, opts, profile)
    return dict(kw, agent_socket=socket, secret_keyring=certs,
                agent_passphrase=_agent_passphrase(config, profile.passphrase))


def with_agent(profile, kw):
    """``kw`` plus the gpg-agent settings for files encrypted to public keys."""
    config, _gpg, _log = _modules()
    return _add_agent(config, _common_checks(config), profile, kw)


# Everything the engine raises for a file: the OpenPGPError family and OSError (I/O).
_FAILURES = (_core.OpenPGPError, OSError)
# What stock gpg should handle instead, per file.
_STOCK_GPG = (_core.OpenPGPUnsupported, _core.OpenPGPConfig)


def _message(exc):
    """The one-line message of an engine exception (its args are (kind or errno, message))."""
    return exc.args[1] if len(exc.args) >= 2 else str(exc)


def _gpg_error(gpg, name, exc):
    return gpg.GPGError(f"GPG Failed on {name}: {_message(exc)}")


class _GPGFileType(type):
    """Lets ``isinstance(f, gpg.GPGFile)`` hold for the stock objects of fallen-back files."""

    def __instancecheck__(cls, obj):
        stock = _stock.get("GPGFile")
        return type.__instancecheck__(cls, obj) or (stock is not None and isinstance(obj, stock))


class GPGFile(metaclass=_GPGFileType):
    """``gpg.GPGFile`` in-process; falls back to the stock class per file (see module doc)."""

    def __new__(cls, encrypt, encrypt_path, profile):
        name = _fsname(encrypt_path)
        try:
            kw = encrypt_settings(profile) if encrypt else decrypt_settings(profile)
            self = object.__new__(cls)
            self._profile = profile
            self._setup(encrypt, encrypt_path, kw)
            return self
        except Fallback as why:
            _info_fallback(name, str(why))
        except _STOCK_GPG as exc:
            _info_fallback(name, _message(exc))
        except _FAILURES as exc:
            _config, gpg, _log = _modules()
            raise _gpg_error(gpg, name, exc) from None
        return _stock["GPGFile"](encrypt, encrypt_path, profile)

    def __init__(self, encrypt, encrypt_path, profile):
        pass

    def _setup(self, encrypt, encrypt_path, kw):
        self.encrypt = encrypt
        self.name = encrypt_path
        self._fsname = os.fsencode(getattr(encrypt_path, "name", encrypt_path))
        self.byte_count = 0
        self.signature = None
        self.status_fp = None
        self.closed = None
        if encrypt:
            self._w = _core.PgpWriter(self._fsname, **kw)
            self._r = None
        else:
            try:
                self._r = _core.PgpReader(self._fsname, **kw)
            except _core.OpenPGPUnsupported:
                if "agent_socket" in kw:
                    raise
                self._r = _core.PgpReader(self._fsname, **with_agent(self._profile, kw))
            self._w = None

    def _fail(self, exc):
        _config, gpg, _log = _modules()
        raise _gpg_error(gpg, os.fsdecode(self._fsname), exc) from None

    def read(self, length=-1):
        """Plaintext bytes (all remaining when ``length`` is negative)."""
        try:
            res = self._r.read(-1 if length is None else length)
        except _FAILURES as exc:
            self._fail(exc)
        self.byte_count += len(res)
        return res

    def write(self, buf):
        """Encrypts ``buf``; returns its length."""
        try:
            n = self._w.write(bytes(buf) if not isinstance(buf, bytes) else buf)
        except _FAILURES as exc:
            self._fail(exc)
        self.byte_count += n
        return n

    def tell(self):
        """Plaintext bytes read or written so far."""
        return self.byte_count

    def seek(self, offset):
        """Forward seek while decrypting."""
        assert not self.encrypt, "seek() is only supported when decrypting (encrypt=False)"
        assert offset >= self.byte_count, f"{int(offset)} < {int(self.byte_count)}"
        while offset > self.byte_count:
            got = self.read(min(offset - self.byte_count, 1 << 20))
            if not got:
                break

    def close(self):
        """Finishes the message (encrypt) or reads to the end, checking the MDC (decrypt)."""
        if self.closed:
            return
        try:
            if self.encrypt:
                _size, sha1_hex, md5_hex, _raw = self._w.close()
                volumes._remember(self._fsname, sha1_hex, md5_hex)
            else:
                try:
                    self._r.drain()
                    signers = self._r.signers() or []
                    self.signature = signers[0] if signers else None
                finally:
                    self._r.close()
        except _FAILURES as exc:
            self.closed = 1
            self._fail(exc)
        self.closed = 1

    def get_signature(self):
        """Key id of the signature, or None."""
        assert self.closed, "file not closed yet"
        return self.signature

    def set_signature(self):
        """Kept for API compatibility: the signature is known once the file is read."""

    def gpg_failed(self):
        """Kept for API compatibility."""
        _config, gpg, _log = _modules()
        raise gpg.GPGError(f"GPG Failed on {os.fsdecode(self._fsname)}")


def GPGWriteFile(block_iter, filename, profile, size=200 * 1024 * 1024, max_footer_size=16 * 1024):
    """``gpg.GPGWriteFile`` in-process: same size rule, footer, top-off (docs/formats.md §4.6)."""
    _config, gpg, _log = _modules()
    from duplicity import errors

    name = os.fsdecode(filename)
    try:
        kw = encrypt_settings(profile)
        writer = _core.PgpWriter(filename, **kw)
    except Fallback as why:
        _info_fallback(name, str(why))
        return _stock["GPGWriteFile"](block_iter, filename, profile, size, max_footer_size)
    except _STOCK_GPG as exc:
        _info_fallback(name, _message(exc))
        return _stock["GPGWriteFile"](block_iter, filename, profile, size, max_footer_size)
    except _FAILURES as exc:
        raise _gpg_error(gpg, name, exc) from None

    target_size = size - 50 * 1024
    data_size = target_size - max_footer_size
    plain = 0

    def write(data):
        nonlocal plain
        plain += writer.write(data)

    def room():
        return data_size - _stock_size(writer.estimated_size(), plain)

    try:
        # Where to split is decided on the running estimate, as stock decides on a size that
        # lags behind gpg; only the top-off below needs the exact size.
        at_end_of_blockiter = volumes.fill_volume(
            block_iter, write, room, room,
            lambda e: errors.FatalError(f"Read error on {name}: {e!s}"))
        write(block_iter.get_footer())
        if not at_end_of_blockiter:
            # the exact size: small volumes are mostly still being compressed
            cursize = _stock_size(_settled_size(writer), plain)
            if cursize < target_size:
                writer.top_off(target_size - cursize)
        _size, sha1_hex, md5_hex, _raw = writer.close()
    except _FAILURES as exc:
        writer.abort()
        raise _gpg_error(gpg, name, exc) from None
    except BaseException:
        writer.abort()
        raise
    volumes._remember(filename, sha1_hex, md5_hex)
    return at_end_of_blockiter


def install_gpg(module, adapter):
    """Hook for ``duplicity.gpg``: in-process ``GPGFile`` and ``GPGWriteFile``."""
    if not hasattr(_core, "PgpWriter"):
        from dupcore.stock import Stock

        raise Stock("this dupcore build has no OpenPGP engine")
    _stock.setdefault("GPGFile", module.GPGFile)
    _stock.setdefault("GPGWriteFile", module.GPGWriteFile)
    module.GPGFile = GPGFile
    module.GPGWriteFile = GPGWriteFile
    return "symmetric and public-key encryption and decryption, signing (keys via gpg-agent)"
