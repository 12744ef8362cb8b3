"""duplicity's fatal error, as the running release line raises it."""
from __future__ import annotations


def fatal_error(msg: str, code: int | None = None) -> BaseException:
    """The exception that stops duplicity with ``msg`` and exit ``code`` (default: generic).

    duplicity 3.2.x has ``errors.FatalError``, which logs the message and is raised; older lines
    have ``log.FatalError``, which logs, shuts logging down and exits, so there the exit happens
    here (``SystemExit``). Use as ``raise fatal_error(...)``.
    """
    from duplicity import errors, log

    if code is None:
        code = log.ErrorCode.generic
    cls = getattr(errors, "FatalError", None)
    if cls is not None:
        return cls(msg, code)
    log.FatalError(msg, code)
    return SystemExit(code)  # not reached: log.FatalError exits
