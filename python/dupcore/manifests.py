"""A damaged manifest stops duplicity with one line naming it, not a Python traceback.

duplicity parses every manifest of a collection (``BackupSet.get_local_manifest`` and
``get_remote_manifest``) before any operation, and its parser ends in ``ValueError``,
``UnicodeDecodeError``, ``IndexError`` and the like when a manifest is damaged (a flipped byte
near its start, a cut line), which every operation then reports as a traceback with exit 30.
This component lets duplicity's own parser run and turns such a failure into duplicity's fatal
error for an unreadable manifest (exit 6), naming the file and what the parser tripped over.
Errors duplicity raises on purpose pass through unchanged.

A manifest that parses but lists fewer volumes than the backend holds for its set (emptied or
cut short) would make duplicity restore an older point in time and report success; while a
restore or verify reads a chain, such a manifest stops it (exit 5, or a warning with
``--ignore-errors``), on the stock path here and in the restore engine's set-up.
"""
from __future__ import annotations

import builtins
import functools
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from dupcore.fatal import fatal_error

if TYPE_CHECKING:
    from dupcore.adapters import Adapter


class _Unparsable(Exception):
    """duplicity's manifest parser failed; carries the parser's own exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"a damaged manifest: {type(cause).__name__}: {cause}")
        self.cause = cause


def _guard_parser(from_string: Callable[..., Any], passthrough: tuple[type, ...]) -> Callable:
    @functools.wraps(from_string)
    def guarded(self: Any, s: bytes) -> Any:
        try:
            return from_string(self, s)
        except passthrough:
            raise
        except Exception as exc:
            raise _Unparsable(exc) from exc

    return guarded


def _name_it(read: Callable[[Any], Any], where: Callable[[Any], str]) -> Callable:
    @functools.wraps(read)
    def named(backup_set: Any) -> Any:
        try:
            return read(backup_set)
        except _Unparsable as exc:
            from duplicity import log

            cause = exc.cause
            raise fatal_error(
                f"Manifest {where(backup_set)} is damaged and cannot be read "
                f"({type(cause).__name__}: {cause}). Restore it from another copy, or remove "
                f"its backup set (and the sets that depend on it) to go on without it.",
                log.ErrorCode.unreadable_manifests) from None

    return named


def _local_name(backup_set: Any) -> str:
    path = getattr(backup_set, "local_manifest_path", None)
    name = getattr(path, "name", None)
    if not name:
        return "in the archive directory"
    name = os.fsdecode(name)
    return f"{os.path.basename(name)} (the archive directory's copy, {name})"


def remote_name(backup_set: Any) -> str:
    """The manifest's file name on the backend (for messages)."""
    return os.fsdecode(getattr(backup_set, "remote_manifest_name", None) or b"") or "the manifest"


def _remote_name(backup_set: Any) -> str:
    from duplicity import config

    if not getattr(config, "check_remote", True):
        return _local_name(backup_set)
    return remote_name(backup_set)


def check_set(config: Any, backup_set: Any, manifest: Any) -> None:
    """Stops (exit 5) when ``manifest`` lists fewer volumes than the backend holds for
    ``backup_set``: restoring from it would give an older state reported as success. With
    ``--ignore-errors`` it is a warning, as duplicity reports errors it ignores."""
    from duplicity import log

    unlisted = sorted(set(backup_set.volume_name_dict) - set(manifest.volume_info_dict))
    if not unlisted:
        return
    msg = (f"Manifest {remote_name(backup_set)} lists {len(manifest.volume_info_dict)} "
           f"volume(s), but the backend holds {len(backup_set.volume_name_dict)} for this backup "
           f"set (volume {', '.join(map(str, unlisted))} not listed): the manifest is damaged, "
           f"and restoring from it would give an older state of the files.")
    if not getattr(config, "ignore_errors", False):
        raise fatal_error(msg, log.ErrorCode.mismatched_manifests)
    text = getattr(builtins, "_", lambda t: t)("IGNORED_ERROR: WARNING: ignoring error as requested: %s: %s")
    log.Warn(text % ("FatalError", msg))


#: how many stock restore/verify readings are under way (their manifests are checked)
_reading = 0


def _checked_manifest(get_manifest: Callable[[Any], Any]) -> Callable:
    @functools.wraps(get_manifest)
    def checked(backup_set: Any) -> Any:
        manifest = get_manifest(backup_set)
        if _reading:
            from duplicity import config

            check_set(config, backup_set, manifest)
        return manifest

    return checked


def _reading_chain(rop_iter: Callable[[Any], Any]) -> Callable:
    """``restore_get_patched_rop_iter`` during which every manifest read is checked."""

    @functools.wraps(rop_iter)
    def reading(col_stats: Any) -> Any:
        global _reading
        _reading += 1
        try:
            entries = rop_iter(col_stats)
        except BaseException:
            _reading -= 1
            raise
        return _while_reading(entries)

    return reading


def _while_reading(entries: Any) -> Any:
    global _reading
    try:
        yield from entries
    finally:
        _reading -= 1


def install_dup_main(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.dup_main``: manifests read by a stock restore or verify are checked
    against their backup sets."""
    from dupcore.stock import Stock

    if not callable(getattr(module, "restore_get_patched_rop_iter", None)):
        raise Stock("dup_main has no restore_get_patched_rop_iter")
    module.restore_get_patched_rop_iter = _reading_chain(module.restore_get_patched_rop_iter)
    return "manifests of a stock restore or verify are checked against their sets"


def install_collections(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.dup_collections``: guard the manifest parser, name the file."""
    from duplicity import errors, manifest

    from dupcore.stock import Stock

    backup_set = getattr(module, "BackupSet", None)
    readers = ("get_local_manifest", "get_remote_manifest")
    if backup_set is None or not all(callable(getattr(backup_set, n, None)) for n in readers):
        raise Stock("dup_collections.BackupSet has no get_local_manifest/get_remote_manifest")
    if not callable(getattr(manifest.Manifest, "from_string", None)):
        raise Stock("manifest.Manifest has no from_string")
    manifest.Manifest.from_string = _guard_parser(manifest.Manifest.from_string,
                                                  (errors.DuplicityError,))
    backup_set.get_local_manifest = _name_it(backup_set.get_local_manifest, _local_name)
    backup_set.get_remote_manifest = _name_it(backup_set.get_remote_manifest, _remote_name)
    if callable(getattr(backup_set, "get_manifest", None)):
        backup_set.get_manifest = _checked_manifest(backup_set.get_manifest)
    return "a damaged manifest stops with one line naming it (exit 6)"
