"""Drop-in replacement for duplicity's ``_librsync`` C module, backed by the Rust engine.

Set ``DUPCORE_LIBRSYNC=2.3.2`` to reproduce Debian 12's librsync bytes; the default reproduces
librsync 2.3.4, the library bundled in duplicity's own wheels.
"""

from dupcore import _env
from dupcore._core import (
    RS_DEFAULT_BLOCK_LEN,
    RS_JOB_BLOCKSIZE,
    get_version,
    librsync_mode,
    librsyncError,
    new_deltamaker,
    new_patchmaker,
    new_sigmaker,
    set_librsync_mode,
)

__all__ = [
    "RS_DEFAULT_BLOCK_LEN",
    "RS_JOB_BLOCKSIZE",
    "get_version",
    "librsyncError",
    "librsync_mode",
    "new_deltamaker",
    "new_patchmaker",
    "new_sigmaker",
    "set_librsync_mode",
]

set_librsync_mode(_env.librsync_mode() or "2.3.4")
