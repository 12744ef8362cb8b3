"""Start-up hook run from ``dupcore-activate.pth``: route duplicity's modules to dupcore.

Imports nothing heavy; only installs a ``sys.meta_path`` finder. ``DUPCORE=0`` disables it.
"""

import os
import sys


class _DupcoreFinder:
    """Serves ``duplicity._librsync`` from ``dupcore._librsync``."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "duplicity._librsync":
            return None
        from importlib.util import find_spec

        return find_spec("dupcore._librsync")


if os.environ.get("DUPCORE", "1") != "0" and not any(
    isinstance(f, type) and f.__name__ == "_DupcoreFinder" for f in sys.meta_path
):
    sys.meta_path.insert(0, _DupcoreFinder)
