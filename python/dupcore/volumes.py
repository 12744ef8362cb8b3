"""Volume files through the Rust engine: ``gpg.GzipWriteFile``/``PlainWriteFile``, ``get_hash``,
and gzip reading in ``path.DupPath.filtered_open``.

The tar blocks still come from duplicity's own block iterator, so the tar stream inside each
volume is duplicity's, byte for byte. Compression runs in parallel (pigz-style chunks forming
one gzip member), hashing happens while the bytes reach the disk, and the volume size rule
follows the host duplicity's release line.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dupcore import _core, deflate

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

#: Volumes whose digests are remembered for ``get_hash``.
_HASH_CACHE_SIZE = 64
_hash_cache = OrderedDict()


def _key(path_bytes):
    st = os.stat(path_bytes)
    return path_bytes, st.st_size, st.st_mtime_ns, st.st_ino


def _remember(filename, sha1_hex, md5_hex):
    name = os.fsencode(filename)
    _hash_cache[_key(name)] = {"SHA1": sha1_hex, "MD5": md5_hex}
    while len(_hash_cache) > _HASH_CACHE_SIZE:
        _hash_cache.popitem(last=False)


def cached_hash(name: bytes | str, algorithm: str) -> str | None:
    """The digest (hex) recorded when dupcore wrote ``name``, if the file is unchanged since."""
    try:
        entry = _hash_cache.get(_key(os.fsencode(name)))
    except OSError:
        return None
    return entry.get(algorithm) if entry else None


def fill_volume(block_iter: Any, write: Callable[[bytes], object], room: Callable[[], int],
                exact_room: Callable[[], int],
                read_error: Callable[[Exception], BaseException] | None = None) -> int:
    """Writes blocks of ``block_iter`` while the next one fits; 1 when the iterator ended, else 0.

    The volume size rule of both the gzip/plain and the OpenPGP writers: ``room()`` is a cheap
    estimate of the bytes left, and only when it says the next block may not fit is
    ``exact_room()`` asked, which waits for the compressors. ``read_error(exc)`` turns a failure
    of the iterator into the exception to raise (default: raise it as it is).
    """
    while True:
        read_size = block_iter.get_read_size()
        if room() < read_size and exact_room() < read_size:
            return 0
        try:
            block = next(block_iter)
        except StopIteration:
            return 1
        except Exception as exc:
            if read_error is None:
                raise
            raise read_error(exc) from exc
        write(block.data)


def make_write_file(footer_and_margin: bool) -> Callable[..., int]:
    """Builds ``GzipWriteFile`` with the size rule of a duplicity line.

    ``footer_and_margin`` True is 3.2.x: stop 50 KiB before ``size`` and end with the tar footer;
    False is 3.0.x and older: fill up to ``size`` and write no footer.
    """

    def GzipWriteFile(block_iter, filename, size=200 * 1024 * 1024, gzipped=True):
        """Writes tar blocks into a gzip (or plain) volume; True when the iterator is exhausted."""
        target_size = size - 50 * 1024 if footer_and_margin else size
        how = deflate.choice()
        writer = _core.VolumeWriter(filename, how.level if gzipped else None, int(time.time()),
                                    engine=how.engine)
        try:
            at_end_of_blockiter = fill_volume(block_iter, writer.write,
                                              lambda: target_size - writer.upper_bound(),
                                              lambda: target_size - writer.settle())
            if footer_and_margin:
                writer.write(block_iter.get_footer())
            summary = writer.close()
            sha1_hex, md5_hex = summary.sha1, summary.md5
        finally:
            if not writer.closed:
                writer.close()
        _remember(filename, sha1_hex, md5_hex)
        return at_end_of_blockiter

    return GzipWriteFile


def make_plain_write_file(gzip_write_file: Callable[..., int]) -> Callable[..., int]:
    """``PlainWriteFile``: the same writer without compression."""

    def PlainWriteFile(block_iter, filename, size=200 * 1024 * 1024, gzipped=False):
        """Writes tar blocks into an uncompressed volume; True when the iterator is exhausted."""
        return gzip_write_file(block_iter, filename, size, gzipped)

    return PlainWriteFile


def get_hash(hash: str, path: Any, hex: bool = True) -> str | bytes:
    """``gpg.get_hash``: served from the digests computed while writing, else read in Rust."""
    if hash not in ("SHA1", "MD5"):
        raise AssertionError(f"Unknown hash {hash}")
    name = path.name
    cached = cached_hash(name, hash)
    if cached is not None:
        return cached if hex else bytes.fromhex(cached)
    digest = _core.hash_file(name, hash)
    return digest.hex() if hex else digest


#: MiB a gzip or OpenPGP volume opened for reading is decoded ahead of its reader (the restore
#: engine raises it while it runs, so that the volumes fetched ahead decode in parallel).
read_ahead_mib = 4


class GzipReadFile:
    """Read-only file object over a gzip file, decompressed ahead on a Rust thread."""

    mode = "rb"

    def __init__(self, name):
        self.name = name
        self._reader = _core.GzipReader(name, read_ahead_mib)

    def read(self, size: int | None = -1) -> bytes:
        """Returns up to ``size`` bytes (everything left when negative)."""
        return self._reader.read(-1 if size is None else size)

    def read1(self, size: int | None = -1) -> bytes:
        """Same as ``read``."""
        return self.read(size)

    def readinto(self, b: bytearray | memoryview) -> int:
        """Fills the buffer ``b``; returns the byte count."""
        data = self._reader.read(len(b))
        b[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        """Position in the decompressed data."""
        return self._reader.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Seeks in the decompressed data (backward seeks reopen the file)."""
        pos = self._reader.tell()
        if whence == os.SEEK_CUR:
            offset += pos
        elif whence != os.SEEK_SET:
            raise OSError("GzipReadFile supports SEEK_SET and SEEK_CUR only")
        if offset < 0:
            raise OSError("negative seek position")
        if offset < pos:
            self._reader.close()
            self._reader = _core.GzipReader(self.name)
            pos = 0
        if offset > pos:
            self._reader.skip(offset - pos)
        return self._reader.tell()

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """True: seeking works (forward cheaply)."""
        return True

    def writable(self) -> bool:
        """Always False."""
        return False

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._reader.closed

    def close(self) -> None:
        """Stops the read-ahead and releases the file."""
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class GzipWriteStream:
    """Write-only gzip file object compressing in parallel (for signatures and manifests)."""

    mode = "wb"

    def __init__(self, name):
        self.name = name
        how = deflate.choice()
        self._writer = _core.VolumeWriter(name, how.level, int(time.time()), engine=how.engine)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Appends bytes; returns their count."""
        return self._writer.write(bytes(data) if not isinstance(data, bytes) else data)

    def flush(self) -> None:
        """No-op: data reaches the file on close."""

    def writable(self) -> bool:
        """Always True."""
        return True

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._writer.closed

    def close(self) -> None:
        """Finishes the gzip member and the file."""
        if not self._writer.closed:
            summary = self._writer.close()
            sha1_hex, md5_hex = summary.sha1, summary.md5
            _remember(self.name, sha1_hex, md5_hex)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def install_gpg(module: ModuleType, adapter: Adapter) -> str:
    """Hook for ``duplicity.gpg``: volume writers and ``get_hash``."""
    gzip_write_file = make_write_file(adapter.gzip_volume_footer)
    module.GzipWriteFile = gzip_write_file
    module.PlainWriteFile = make_plain_write_file(gzip_write_file)
    module.get_hash = get_hash
    rule = "target size-50K, footer" if adapter.gzip_volume_footer else "target size, no footer"
    return f"gzip/plain volume writer ({rule}), get_hash"


def install_path(module: ModuleType, adapter: Adapter) -> str:
    """Hook for ``duplicity.path``: gzip files opened by ``DupPath.filtered_open``."""
    original = module.DupPath.filtered_open

    def filtered_open(self, mode="rb", gpg_profile=None):
        if self.pr.compressed and not self.pr.encrypted and not self.opened and not self.fileobj:
            if mode == "rb":
                return GzipReadFile(self.name)
            if mode == "wb":
                return GzipWriteStream(self.name)
        return original(self, mode, gpg_profile)

    filtered_open.__doc__ = original.__doc__
    module.DupPath.filtered_open = filtered_open
    return "gzip reading with read-ahead"
