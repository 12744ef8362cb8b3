"""Whole-file versions of duplicity's ``librsync.SigGenerator``, ``DeltaFile`` and ``PatchedFile``.

They produce the same bytes as duplicity's classes driven through ``_librsync`` but hand the
Rust engine large pieces (1 MiB) with the GIL released, instead of one Python round trip per
64 KiB. ``install(duplicity.librsync, adapter)`` puts them in place of duplicity's classes.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from dupcore import _core, _librsync

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

#: Bytes read from the input file per step.
READ_SIZE = 1 << 20
#: Signature input buffered before it is handed to the engine.
SIG_BATCH = 256 * 1024


def _error_class():
    """duplicity's ``librsyncError``, which ``robust.check_common_error`` knows how to skip."""
    try:
        from duplicity.librsync import librsyncError
    except ImportError:  # used without duplicity
        return _librsync.librsyncError
    return librsyncError


def _raise_as_duplicity(exc):
    raise _error_class()(str(exc)) from None


def _check_file(file, need_seek=False):
    if not hasattr(file, "read"):
        raise TypeError("Basis file must have a read() method")
    if not hasattr(file, "close"):
        raise TypeError("Basis file must have a close() method")
    if need_seek and not hasattr(file, "seek"):
        raise TypeError("Basis file must have a seek() method")


class _OutBuffer:
    """Output queue serving exact-length reads without quadratic copying."""

    def __init__(self):
        self._chunks = []
        self._head = b""
        self._pos = 0
        self.size = 0

    def push(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.size += len(data)

    def take(self, length: int) -> bytes:
        """Returns up to ``length`` bytes (all when ``length`` < 0)."""
        if length < 0 or length > self.size:
            length = self.size
        parts = []
        need = length
        while need:
            if self._pos >= len(self._head):
                self._head = self._chunks.pop(0)
                self._pos = 0
            piece = self._head[self._pos : self._pos + need]
            self._pos += len(piece)
            need -= len(piece)
            parts.append(piece)
        self.size -= length
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _EngineFile:
    """Common file-like behaviour: exact-length ``read``, ``close`` closes the input."""

    mode = "rb"

    def __init__(self, infile):
        _check_file(infile)
        self.infile = infile
        self.closed = self.infile_closed = False
        self.eof = self.infile_eof = False
        self._out = _OutBuffer()

    def _close_infile(self):
        if not self.infile_closed:
            assert not self.infile.close(), "self.infile failed to close"
            self.infile_closed = True

    def _step(self):
        raise NotImplementedError

    def read(self, length: int = -1) -> bytes:
        """Returns exactly ``length`` bytes until the end (all bytes for -1)."""
        while not self.eof and (length < 0 or self._out.size < length):
            try:
                self._step()
            except _librsync.librsyncError as e:
                _raise_as_duplicity(e)
        return self._out.take(length)

    def close(self) -> None:
        """Closes the input file."""
        self._close_infile()
        self.closed = True


class DeltaFile(_EngineFile):
    """The librsync delta of ``new_file`` against ``signature`` (bytes or a file-like)."""

    def __init__(self, signature, new_file):
        super().__init__(new_file)
        if isinstance(signature, bytes):
            sig = signature
        else:
            _check_file(signature)
            sig = signature.read()
            assert not signature.close(), "signature failed to close"
        try:
            self.maker = _librsync.new_deltamaker(sig)
        except _librsync.librsyncError as e:
            _raise_as_duplicity(e)
        self._source = self.infile
        sig_gen = _signature_to_share(new_file)
        if sig_gen is not None and self.maker.share_signature(sig_gen.blocksize):
            # Read under duplicity's FileWithSignature: its signature is made from the
            # delta's own block sums, and its close() still hands it over.
            sig_gen._share(self.maker)
            self._source = new_file.infile

    def _step(self):
        if self.maker.slack:
            self._slack_step()
            return
        data = self._source.read(READ_SIZE)
        if data:
            self._out.push(self.maker.update(data))
        else:
            self._finish()

    def _slack_step(self):
        # An empty signature makes one literal per engine call, so the input is gathered
        # exactly as duplicity's LikeFile does: 64 KiB reads until at least 64 KiB are buffered.
        pieces, size = [], 0
        while size < _librsync.RS_JOB_BLOCKSIZE:
            data = self.infile.read(_librsync.RS_JOB_BLOCKSIZE)
            if not data:
                break
            pieces.append(data)
            size += len(data)
        if pieces:
            self._out.push(self.maker.cycle(b"".join(pieces))[2])
        if size < _librsync.RS_JOB_BLOCKSIZE:
            self._finish()

    def _finish(self):
        self.infile_eof = True
        self._close_infile()
        self._out.push(self.maker.finish())
        self.eof = True


def _signature_to_share(new_file):
    """The ``SigGenerator`` of duplicity's ``FileWithSignature`` around ``new_file``'s data,
    when nothing has been read through it yet, else None."""
    diffdir = sys.modules.get("duplicity.diffdir")
    wrapper = getattr(diffdir, "FileWithSignature", None)
    if wrapper is None or type(new_file) is not wrapper:
        return None
    sig_gen = getattr(new_file, "sig_gen", None)
    if not isinstance(sig_gen, SigGenerator) or not sig_gen.fresh:
        return None
    if getattr(new_file, "activated_callback", None) or not hasattr(new_file, "infile"):
        return None
    return sig_gen


class PatchedFile(_EngineFile):
    """The result of applying the delta read from ``delta_file`` to ``basis_file``."""

    def __init__(self, basis_file, delta_file):
        super().__init__(delta_file)
        try:
            basis_file.fileno()
        except Exception:  # noqa: BLE001
            if hasattr(basis_file, "file") and hasattr(basis_file.file, "fileno"):
                basis_file = basis_file.file
            else:
                raise TypeError(
                    "basis_file must be a (true) file or an object whose "
                    "file attribute is the underlying true file object"
                ) from None
        try:
            self.maker = _librsync.new_patchmaker(basis_file)
        except _librsync.librsyncError as e:
            _raise_as_duplicity(e)
        self._inbuf = b""
        self._inpos = 0

    def _step(self):
        left = len(self._inbuf) - self._inpos
        if not self.infile_eof and left < READ_SIZE:
            data = self.infile.read(READ_SIZE)
            if data:
                self._inbuf = self._inbuf[self._inpos :] + data if left else data
                self._inpos = 0
                left = len(self._inbuf)
            else:
                self.infile_eof = True
                self._close_infile()
        if not left and not self.infile_eof:
            return
        done, used, out = self.maker.run(self._inbuf, READ_SIZE, self._inpos)
        self._inpos += used
        self._out.push(out)
        if done:
            self.eof = True


class SigGenerator:
    """Signature of data given to ``update``, with the interface of duplicity's class."""

    def __init__(self, blocksize=_librsync.RS_DEFAULT_BLOCK_LEN):
        try:
            self.sig_maker = _core.new_sigjob(blocksize)
        except _librsync.librsyncError as e:
            _raise_as_duplicity(e)
        self.blocksize = blocksize or _librsync.RS_DEFAULT_BLOCK_LEN
        self.gotsig = None
        self._pending = []
        self._pending_size = 0
        self._fed = 0
        self._shared = None
        self.sigstring_list = []

    @property
    def fresh(self) -> bool:
        """Whether no data has been added and no signature taken yet."""
        return not (self._fed or self.gotsig or self.sigstring_list) and self._shared is None

    def _share(self, maker) -> None:
        """Takes the signature from a delta job that is given the same data."""
        self._shared = maker

    def update(self, buf: bytes) -> None:
        """Adds data to the signature."""
        if self.gotsig:
            raise _error_class()("SigGenerator already provided signature")
        self._fed += len(buf)
        if self._shared is not None:
            if buf:
                try:
                    self._shared.signature_update(buf)
                except _librsync.librsyncError as e:
                    _raise_as_duplicity(e)
            return
        self._pending.append(buf)
        self._pending_size += len(buf)
        if self._pending_size >= SIG_BATCH:
            self._flush()

    def _flush(self):
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
            try:
                self.sig_maker.feed(data)
            except _librsync.librsyncError as e:
                _raise_as_duplicity(e)

    def getsig(self) -> bytes:
        """Returns the signature of all data added."""
        self._flush()
        try:
            shared = self._shared
            self.sigstring_list.append(
                shared.signature() if shared is not None else self.sig_maker.collect()
            )
        except _librsync.librsyncError as e:
            _raise_as_duplicity(e)
        return b"".join(self.sigstring_list)


def install(librsync_module: ModuleType, adapter: Adapter) -> None:
    """Hook on ``duplicity.librsync``: replaces its whole-file classes with these ones."""
    librsync_module.DeltaFile = DeltaFile
    librsync_module.PatchedFile = PatchedFile
    librsync_module.SigGenerator = SigGenerator
