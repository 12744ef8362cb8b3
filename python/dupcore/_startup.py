"""Start-up hook: route duplicity's modules to dupcore.

Run at every interpreter start, from ``dupcore_activate.pth`` (and, on Python >= 3.15, from the
PEP 829 entry point ``dupcore_activate.start`` -> ``dupcore._startup:activate``). It imports only
``sys`` and :mod:`dupcore._env` (``os``) and installs a ``sys.meta_path`` finder; the finder looks at nothing but
``duplicity.*`` imports and hands those to :mod:`dupcore.importer`, which is loaded only then.

``DUPCORE=0`` (or ``off``/``false``/``no``) disables everything: no finder is installed.
"""

from __future__ import annotations

import sys

from dupcore._env import disabled as disabled_by_env


class DupcoreFinder:
    """``sys.meta_path`` finder that lets :mod:`dupcore.importer` handle ``duplicity.*``."""

    _dupcore_finder = True
    failed = None  # the exception that stopped dupcore.importer from loading, if any

    @classmethod
    def find_spec(cls, fullname: str, path: object = None,
                  target: object = None) -> object | None:
        """Return dupcore's spec for a hooked duplicity module, else None (normal import)."""
        if not fullname.startswith("duplicity.") or cls.failed is not None:
            return None
        try:
            from dupcore import importer
        except Exception as exc:  # noqa: BLE001 - never break duplicity because of dupcore
            cls.failed = exc
            return None
        return importer.find_spec(fullname, path, target)


def installed() -> bool:
    """True when the dupcore finder is on ``sys.meta_path``."""
    return any(getattr(f, "_dupcore_finder", False) for f in sys.meta_path)


def activate() -> bool:
    """Install the finder once (idempotent); a no-op when ``DUPCORE=0``."""
    if disabled_by_env():
        return False
    if not installed():
        sys.meta_path.insert(0, DupcoreFinder)
    return True


activate()
