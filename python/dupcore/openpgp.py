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
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from dupcore import _core, volumes
from dupcore.fatal import fatal_error
from dupcore.gpg_settings import (
    Fallback,
    decrypt_settings,
    encrypt_settings,
    modules,
    with_agent,
)

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

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


def _info_fallback(name, reason):
    _config, _gpg, log = modules()
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
            _config, gpg, _log = modules()
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
            # decoded as far ahead as a gzip volume (a restore raises it while it runs)
            kw = dict(kw, ahead=volumes.read_ahead_mib)
            try:
                self._r = _core.PgpReader(self._fsname, **kw)
            except _core.OpenPGPUnsupported:
                if "agent_socket" in kw:
                    raise
                self._r = _core.PgpReader(self._fsname, **with_agent(self._profile, kw))
            self._w = None

    def _fail(self, exc):
        _config, gpg, _log = modules()
        raise _gpg_error(gpg, os.fsdecode(self._fsname), exc) from None

    def read(self, length: int | None = -1) -> bytes:
        """Plaintext bytes (all remaining when ``length`` is negative)."""
        try:
            res = self._r.read(-1 if length is None else length)
        except _FAILURES as exc:
            self._fail(exc)
        self.byte_count += len(res)
        return res

    def write(self, buf: bytes | bytearray | memoryview) -> int:
        """Encrypts ``buf``; returns its length."""
        try:
            n = self._w.write(bytes(buf) if not isinstance(buf, bytes) else buf)
        except _FAILURES as exc:
            self._fail(exc)
        self.byte_count += n
        return n

    def tell(self) -> int:
        """Plaintext bytes read or written so far."""
        return self.byte_count

    def seek(self, offset: int) -> None:
        """Forward seek while decrypting."""
        assert not self.encrypt, "seek() is only supported when decrypting (encrypt=False)"
        assert offset >= self.byte_count, f"{int(offset)} < {int(self.byte_count)}"
        while offset > self.byte_count:
            got = self.read(min(offset - self.byte_count, 1 << 20))
            if not got:
                break

    def close(self) -> None:
        """Finishes the message (encrypt) or reads to the end, checking the MDC (decrypt)."""
        if self.closed:
            return
        try:
            if self.encrypt:
                summary = self._w.close()
                sha1_hex, md5_hex = summary.sha1, summary.md5
                volumes._remember(self._fsname, sha1_hex, md5_hex)
            else:
                try:
                    self._r.drain()
                    for note in self._r.warnings():
                        _config, _gpg, log = modules()
                        log.Warn(f"dupcore openpgp: {os.fsdecode(self._fsname)}: {note}")
                    signers = self._r.signers() or []
                    self.signature = signers[0] if signers else None
                finally:
                    self._r.close()
        except _FAILURES as exc:
            self.closed = 1
            self._fail(exc)
        self.closed = 1

    def get_signature(self) -> str | None:
        """Key id of the signature, or None."""
        assert self.closed, "file not closed yet"
        return self.signature

    def set_signature(self) -> None:
        """Kept for API compatibility: the signature is known once the file is read."""

    def gpg_failed(self) -> NoReturn:
        """Kept for API compatibility."""
        _config, gpg, _log = modules()
        raise gpg.GPGError(f"GPG Failed on {os.fsdecode(self._fsname)}")


def GPGWriteFile(block_iter: Any, filename: bytes | str, profile: Any,
                 size: int = 200 * 1024 * 1024, max_footer_size: int = 16 * 1024) -> int:
    """``gpg.GPGWriteFile`` in-process: same size rule, footer, top-off (docs/formats.md §4.6)."""
    _config, gpg, _log = modules()
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
            lambda e: fatal_error(f"Read error on {name}: {e!s}"))
        write(block_iter.get_footer())
        if not at_end_of_blockiter:
            # the exact size: small volumes are mostly still being compressed
            cursize = _stock_size(_settled_size(writer), plain)
            if cursize < target_size:
                writer.top_off(target_size - cursize)
        summary = writer.close()
        sha1_hex, md5_hex = summary.sha1, summary.md5
    except _FAILURES as exc:
        writer.abort()
        raise _gpg_error(gpg, name, exc) from None
    except BaseException:
        writer.abort()
        raise
    volumes._remember(filename, sha1_hex, md5_hex)
    return at_end_of_blockiter


def install_gpg(module: ModuleType, adapter: Adapter) -> str:
    """Hook for ``duplicity.gpg``: in-process ``GPGFile`` and ``GPGWriteFile``."""
    if not hasattr(_core, "PgpWriter"):
        from dupcore.stock import Stock

        raise Stock("this dupcore build has no OpenPGP engine")
    _stock.setdefault("GPGFile", module.GPGFile)
    _stock.setdefault("GPGWriteFile", module.GPGWriteFile)
    module.GPGFile = GPGFile
    module.GPGWriteFile = GPGWriteFile
    return "symmetric and public-key encryption and decryption, signing (keys via gpg-agent)"
