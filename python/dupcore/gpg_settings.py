"""gpg's settings as dupcore's OpenPGP engine needs them: ``--gpg-options``, keys, the agent.

What duplicity's gpg profile and config ask for is turned into keyword arguments of
``_core.PgpWriter`` / ``_core.PgpReader``. Public keys come from ``gpg --export`` and the
gpg-agent socket from ``gpgconf`` (a few short processes per session, cached per GnuPG home).
Anything the engine does not serve raises :class:`Fallback` with the reason; the file then goes
to stock gpg (:mod:`dupcore.openpgp`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from types import ModuleType
from typing import Any

from dupcore import deflate

_keyrings = {}  # (home, key ids) -> exported public keys
_agents = {}  # home -> (agent socket, certificates of the secret keys)
_lock = threading.Lock()


class Fallback(Exception):
    """This file goes to stock gpg; the message says why."""


def modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    from duplicity import gpg, log

    try:
        from duplicity import config
    except ImportError:  # duplicity < 0.8.23 keeps its settings in duplicity.globals
        from duplicity import globals as config
    return config, gpg, log


def parse_gpg_options(text: str | None) -> dict[str, str]:
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
    """(algorithm, level, engine) of the compressed packet; level None writes none.

    gpg's own ``--compress-level``/``-z`` picks a zlib level as gpg would; without it the
    ``DUPCORE_COMPRESS`` profile applies."""
    if not getattr(config, "compression", True):
        return "zip", None, "zlib-rs"
    algo = opts.get("--compress-algo", "zip").lower()
    if algo in ("none", "0", "uncompressed"):
        return "zip", None, "zlib-rs"
    if algo in ("zip", "1"):
        algo = "zip"
    elif algo in ("zlib", "2"):
        algo = "zlib"
    else:
        raise Fallback(f"--compress-algo {algo} (dupcore writes ZIP, ZLIB or none)")
    level = opts.get("--compress-level", opts.get("-z"))
    if level is None:
        how = deflate.choice()
        return algo, how.level, how.engine
    try:
        level = int(level)
    except ValueError:
        raise Fallback(f"--compress-level {level}") from None
    if level <= 0:
        return algo, None, "zlib-rs"
    return algo, min(level, 9), "zlib-rs"


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


def agent_settings(config: ModuleType, opts: dict[str, str],
                   profile: Any) -> tuple[str, bytes]:
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


def encrypt_settings(profile: Any) -> dict[str, Any]:
    """Keyword arguments for ``_core.PgpWriter``; raises Fallback when stock gpg must encrypt."""
    config, _gpg, _log = modules()
    opts = _common_checks(config)
    if opts.get("--s2k-mode", "3") != "3":
        raise Fallback(f"--s2k-mode {opts['--s2k-mode']}")
    algo, level, engine = _compression(config, opts)
    kw = {"compress_algo": algo, "compress_level": level, "compress_engine": engine,
          "mtime": int(time.time()) & 0xFFFFFFFF}
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


def decrypt_settings(profile: Any) -> dict[str, Any]:
    """Keyword arguments for ``_core.PgpReader``; raises Fallback when stock gpg must decrypt.

    Secret-key settings (the agent) are added by ``with_agent`` once a file needs them.
    """
    config, _gpg, _log = modules()
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


def with_agent(profile: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` plus the gpg-agent settings for files encrypted to public keys."""
    config, _gpg, _log = modules()
    return _add_agent(config, _common_checks(config), profile, kw)
