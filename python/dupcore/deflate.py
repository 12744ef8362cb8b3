"""The deflate engine and level of gzip volumes and OpenPGP compressed packets.

``DUPCORE_COMPRESS`` names a profile (see :mod:`dupcore._env`); the extension module says which
engine and level it stands for in this build (``fast`` is ISA-L where the build has it, zlib-rs
level 1 otherwise). An unknown name writes with the default and ``python -m dupcore status``
reports it.
"""
from __future__ import annotations

from dupcore import _core, _env


class Choice:
    """The engine and level in use, and the problem with ``DUPCORE_COMPRESS`` if there is one."""

    def __init__(self, profile: str, engine: str, level: int, problem: str | None = None):
        self.profile, self.engine, self.level, self.problem = profile, engine, level, problem

    def describe(self) -> str:
        """One line for ``status``."""
        return (f"{self.engine} level {self.level} (DUPCORE_COMPRESS={self.profile}; "
                f"engines built: {', '.join(_core.DEFLATE_ENGINES)})")


def choice() -> Choice:
    """What ``DUPCORE_COMPRESS`` selects now."""
    profile = _env.compress_profile()
    try:
        engine, level = _core.deflate_profile(profile)
        return Choice(profile, engine, level)
    except ValueError as exc:
        engine, level = _core.deflate_profile("default")
        return Choice(profile, engine, level, f"{exc}; writing with {engine} level {level}")
