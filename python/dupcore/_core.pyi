"""Typed stubs of the Rust extension module ``dupcore._core``."""


__version__: str
RS_JOB_BLOCKSIZE: int
RS_DEFAULT_BLOCK_LEN: int
DEFLATE_LEVEL: int  # of gzip volumes and OpenPGP compressed packets
DEFLATE_ENGINES: list[str]  # deflate engines this build has ("zlib-rs", "isal")

def cpu_paths() -> list[str]:
    """The accelerated code paths this CPU gets (e.g. "md4 and rollsum: AVX2"); empty if none."""

def deflate_profile(name: str) -> tuple[str, int]:
    """(engine, level) a DUPCORE_COMPRESS value stands for; ValueError for an unknown name."""

class librsyncError(Exception):
    """An error inside a librsync job (message names the librsync code and the step)."""

class sigmaker:
    """A signature job."""
    def cycle(self, buf: bytes) -> tuple[int, int, bytes]: ...
    def update(self, buf: bytes) -> bytes: ...
    def finish(self) -> bytes: ...

class deltamaker:
    """A delta job against a loaded signature."""
    slack: bool
    def cycle(self, buf: bytes) -> tuple[int, int, bytes]: ...
    def update(self, buf: bytes) -> bytes: ...
    def finish(self) -> bytes: ...

class patchmaker:
    """A patch job reading its basis through a duplicated file descriptor."""
    def cycle(self, buf: bytes) -> tuple[int, int, bytes]: ...
    def run(self, buf: bytes, limit: int, offset: int = 0) -> tuple[bool, int, bytes]: ...

def new_sigmaker(blocklen: int) -> sigmaker: ...

class sigjob:
    """A whole-file signature; data past the first MiB is summed on a thread of its own."""
    def feed(self, buf: bytes) -> None: ...
    def collect(self) -> bytes: ...

def new_sigjob(blocklen: int) -> sigjob: ...
def new_deltamaker(sig: bytes) -> deltamaker: ...
def new_patchmaker(f: object) -> patchmaker: ...
def get_version() -> str: ...
def set_librsync_mode(mode: str) -> None: ...
def librsync_mode() -> str: ...

class VolumeWriter:
    """A volume file being written: parallel gzip or plain, hashed as it reaches the disk."""
    closed: bool
    def __init__(self, path: object, gzip_level: int | None = None, mtime: int = 0,
                 engine: str = "zlib-rs") -> None: ...
    def write(self, data: bytes) -> int: ...
    def upper_bound(self) -> int: ...
    def settle(self) -> int: ...
    def close(self) -> WriteSummary: ...

class WriteSummary:
    """What a writer reports when it closes."""
    size: int
    sha1: str
    md5: str
    raw_size: int

class GzipReader:
    """A gzip file read sequentially, decompressed ahead on a background thread."""
    closed: bool
    def __init__(self, path: object, ahead: int = 4) -> None: ...
    def read(self, size: int = -1) -> bytes: ...
    def skip(self, n: int) -> int: ...
    def tell(self) -> int: ...
    def close(self) -> None: ...

def hash_file(path: object, algorithm: str) -> bytes: ...

def tar_header(
    name: bytes, typeflag: bytes, mode: int, uid: int, gid: int, size: int, mtime: float,
    linkname: bytes, uname: bytes, gname: bytes, devmajor: int, devminor: int,
) -> bytes | None: ...
def tar_block(
    name: bytes, typeflag: bytes, mode: int, uid: int, gid: int, mtime: float, linkname: bytes,
    uname: bytes, gname: bytes, devmajor: int, devminor: int, data: bytes,
) -> bytes | None: ...
def tar_frombuf(cls: type, buf: bytes, encoding: str, errors: str) -> object | None:
    """``cls.frombuf(buf, encoding, errors)`` for a common header, or None for CPython's parser."""

class OpenPGPError(Exception):
    """An OpenPGP failure; ``args`` are ``(kind, message)``. I/O failures raise ``OSError``
    (the subclass of its errno) instead."""

class OpenPGPUnsupported(OpenPGPError):
    """Not served in-process: stock gpg should handle this file (kind ``"unsupported"``)."""

class OpenPGPConfig(OpenPGPError):
    """Unknown algorithm or unusable key: stock gpg should handle this file (``"config"``)."""

class OpenPGPBadKey(OpenPGPError):
    """Wrong passphrase or no usable secret key (kind ``"badkey"``)."""

class OpenPGPCorrupt(OpenPGPError):
    """Damaged, manipulated or truncated data, failed MDC (kind ``"corrupt"``)."""

class PgpWriter:
    """An encrypted file being written (OpenPGP message, hashed as it reaches the disk)."""
    closed: bool
    def __init__(
        self, path: object, passphrase: str | None = None,
        recipients: list[tuple[str, bool]] = ..., keyring: bytes = ..., cipher: str | None = None,
        compress_level: int | None = 6, s2k_digest: str | None = None,
        s2k_count: int | None = None,
        mtime: int = 0, sign_key: str | None = None, sign_keyring: bytes = ...,
        agent_socket: str | None = None, agent_passphrase: str | None = None,
        compress_algo: str = "zip", compress_engine: str = "zlib-rs",
    ) -> None: ...
    def write(self, data: bytes) -> int: ...
    def estimated_size(self) -> int: ...
    def flush(self) -> int: ...
    def top_off(self, n: int) -> None: ...
    def close(self) -> WriteSummary: ...
    def abort(self) -> None: ...

class PgpReader:
    """An OpenPGP file decrypted sequentially, ahead of the reader on its own threads."""
    closed: bool
    def __init__(
        self, path: object, passphrase: str | None = None, keyring: bytes = ...,
        agent_socket: str | None = None, agent_passphrase: str | None = None,
        secret_keyring: bytes = ...,
    ) -> None: ...
    def read(self, size: int = -1) -> bytes: ...
    def drain(self) -> None: ...
    def tell(self) -> int: ...
    def warnings(self) -> list[str]: ...
    def signers(self) -> list[str] | None: ...
    def close(self) -> None: ...

def set_restore_spill(dir: str | bytes | None, budget: int = 0) -> None:
    """Volume readers opened from now on decode ahead into spool files in ``dir``."""

class BackupScan:
    """The scan of a backup: walk, previous signatures, unchanged test (see ``dupcore.backup``)."""
    def __init__(self, root: bytes, sigs: list[object], copy_links: bool = False,
                 numeric_owner: bool = False, debug: bool = False,
                 paths: object | None = None, rules: list[tuple] = ...,
                 files_from: dict[bytes, list[bytes]] | None = None) -> None: ...
    def next_batch(self) -> tuple[list[tuple], int, int, bool, object | None]: ...

def backup_selection_ok(rules: list[tuple]) -> bool:
    """Whether the engine takes these selection functions."""

def backup_walk(root: bytes, rules: list[tuple],
                files_from: dict[bytes, list[bytes]] | None = None) -> list[tuple[bytes, ...]]:
    """The indexes the engine's walk selects under ``root`` (for the differential tests)."""

class RestoreEngine:
    """A restore running on its own thread (see ``dupcore.restore``)."""
    def __init__(self, target: bytes, sets: int, restrict: list[bytes], tempdir: bytes,
                 numeric_owner: bool, restore_ownership: bool, ignore_errors: bool,
                 force: bool, verify: bool | None = None, writers: int = 0,
                 local: tuple[bytes, list[tuple], dict[bytes, list[bytes]] | None, bool, bool,
                              bool] | None = None, spool_memory: int = ...) -> None: ...
    def next(self) -> tuple[str, object, list[tuple]]: ...
    def give(self, volume: object | None) -> None: ...
    def close(self) -> None: ...
