"""Backup scan through the Rust engine (:mod:`dupcore._core` ``BackupScan``).

For every path of the source tree duplicity's ``diffdir.get_delta_iter`` builds a ``Path``
(``lstat``), runs the selection, reads the matching entry of the previous signatures with
``tarfile`` into an ``ROPath`` and compares the two, in Python, even when nothing changed.
dupcore's ``DirDelta_WriteSig`` (which ``DirFull_WriteSig`` and ``DirFull`` call) lets the
engine walk the tree as ``Select.Iterate`` walks it, read and combine the signature tars and
compare each pair as ``ROPath.__eq__`` does; unchanged paths are only counted in the
statistics. Every other pair comes back here and goes through duplicity's own code
(``get_delta_path``, ``log_delta_path``, the signature tar writer, ``DeltaTarBlockIter``), so
the volumes, the signature tar, the manifest, the log lines and the statistics stay stock's.

Where the engine knows every selection function (globs, regular expressions and literal
strings, case-insensitive ones too through :mod:`dupcore.nocase`, ``--exclude-if-present``,
``--exclude-device-files``, ``--exclude-other-filesystems``, ``--exclude-older-than``;
``--files-from`` too) and without ``--rename``, the engine also walks the tree itself, as
``Select.Iterate`` does. Otherwise (regular expressions with Python-only syntax, undecodable
bytes in a pattern) duplicity's ``Select`` yields the paths (and logs its own lines) and the
engine takes each ``Path`` from it; it then hands its pending events to Python before it asks
for the next path, so the log keeps stock's order.
"""
from __future__ import annotations

import builtins
import io
import os
import re
from types import ModuleType
from typing import TYPE_CHECKING

from dupcore import _core, nocase

if TYPE_CHECKING:
    from dupcore.adapters import Adapter


def _(text):
    return getattr(builtins, "_", lambda s: s)(text)


#: ``Select``'s last debug line for a path, by its verdict.
VERDICTS = ("Selection:     - excluding file", "Selection:     + including file",
            "Selection:     ? scanning directory for matches")

#: Two warnings of the scan as each release line spells them (2.2.x: ``Warning:``).
WORDING = {
    "WARNING": ("WARNING: base %s doesn't exist, continuing",
                "WARNING: %s has negative mtime, treating as 0."),
    "Warning": ("Warning: base %s doesn't exist, continuing",
                "Warning: %s has negative mtime, treating as 0."),
}


def unsupported(path_iter, sig_infp_list, config: ModuleType) -> str | None:
    """None when the engine can scan for this backup, else why not."""
    sigs = sig_infp_list if isinstance(sig_infp_list, list) else [sig_infp_list]
    for s in sigs:
        if isinstance(s, io.StringIO) and s.getvalue() != "":
            return "signatures given as text"
    return None


def _cells(fn) -> dict:
    """The closure variables of a selection function that have a value."""
    out = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            out[name] = cell.cell_contents
        except ValueError:  # declared but never assigned (e.g. glob_comp_re_exact)
            pass
    return out


def _regex(pattern) -> tuple[str, int]:
    """A compiled pattern as (pattern, flags); an IGNORECASE one rewritten case-sensitive
    (:mod:`dupcore.nocase`), raising LookupError where the rewrite does not cover it."""
    if not pattern.flags & re.IGNORECASE:
        return pattern.pattern, pattern.flags
    rewritten = nocase.case_sensitive(pattern.pattern, pattern.flags)
    if rewritten is None:
        raise LookupError(pattern.pattern)
    return rewritten


def _rule(sf) -> tuple | None:
    """The engine's form of one of duplicity's selection functions, or None."""
    try:
        return _known_rule(sf)
    except LookupError:  # a case-insensitive pattern the rewrite does not cover
        return None


def _known_rule(sf) -> tuple | None:
    name = getattr(sf, "name", "")
    if not hasattr(sf, "__code__"):
        return None
    cells = _cells(sf)
    if name.startswith("shell glob "):
        include = cells.get("include")
        if include not in (0, 1):
            return None
        if set(cells) == {"include"} and name.endswith((" case: **", " no-case: **")):
            return ("all", include)
        if sf.__code__.co_name != "test_fn" or "glob_comp_re" not in cells:
            return None
        exact = cells.get("glob_comp_re_exact") if cells.get("glob_ends_w_slash") else None
        if cells.get("glob_ends_w_slash") and exact is None:
            return None
        return ("glob", include, *_regex(cells["glob_comp_re"]),
                _regex(exact) if exact is not None else None, *_regex(cells["scan_comp_re"]))
    if name.startswith("regular expression "):
        include, regexp = cells.get("include"), cells.get("regexp")
        if include not in (0, 1) or not isinstance(regexp, re.Pattern):
            return None
        return ("regexp", include, *_regex(regexp))
    if name.startswith("literal string "):
        include, lit = cells.get("include"), cells.get("lit_str")
        if include not in (0, 1) or not isinstance(lit, str):
            return None
        if cells.get("ignore_case"):  # compared casefolded: a glob rule of two expressions
            patterns = nocase.literal_patterns(lit)
            if patterns is None:
                return None
            flags = re.DOTALL | re.UNICODE
            return ("glob", include, patterns[0], flags, None, patterns[1], flags)
        try:
            return ("literal", include, os.fsencode(lit))
        except UnicodeEncodeError:
            return None
    if name.startswith("Command-line exclude-if-present filename: ") and "filename" in cells:
        return ("present", os.fsencode(cells["filename"]))
    if name == "Exclude device files":
        return ("devices",)
    if name == "Match other filesystems" and {"include", "root_devloc"} <= set(cells):
        return ("other_fs", cells["include"], cells["root_devloc"])
    if name.startswith("Select older than ") and isinstance(cells.get("date"), (int, float)):
        return ("older", float(cells["date"]))
    return None


def engine_rules(path_iter, config: ModuleType, line: str) -> list[tuple] | None:
    """The selection functions of ``path_iter`` in the engine's form when the engine walks the
    tree itself (duplicity's ``Select`` of a root directory, every function one the engine
    knows, no ``--rename``), else None: the engine then takes the paths ``path_iter`` yields
    (duplicity's own selection, which also logs its lines). ``--files-from`` goes with them:
    :func:`engine_files_from`."""
    from duplicity import selection

    if not (isinstance(path_iter, selection.Select)
            and not getattr(config, "rename", None)
            and path_iter.rootpath.index == ()):
        return None
    if path_iter.selection_functions and line not in ("3.2.x", "3.0.x", "2.2.x", "2.1.x"):
        return None
    rules = [_rule(sf) for sf in path_iter.selection_functions]
    if any(r is None for r in rules) or not _core.backup_selection_ok(rules):
        return None
    return rules


def engine_files_from(path_iter) -> dict[bytes, list[bytes]] | None:
    """``Select.files_from`` (``--files-from``) in the engine's form: each directory's full name
    as bytes and the names listed in it, sorted; None without the option."""
    listed = getattr(path_iter, "files_from", None)
    if listed is None:
        return None
    return {os.fsencode(d): list(names) for d, names in listed.items()}


class _Feed:
    """duplicity's path iterator as the engine reads it; remembers the last path, the only one
    a pair can name when the engine asks for the next."""

    def __init__(self, paths):
        self.paths = paths
        self.last = None

    def __next__(self):
        self.last = next(self.paths)
        return self.last


def _sig_files(sig_infp_list):
    """The signature file objects to read (``StringIO("")`` is duplicity's "no signatures")."""
    sigs = sig_infp_list if isinstance(sig_infp_list, list) else [sig_infp_list]
    return [s for s in sigs if not isinstance(s, io.StringIO)]


def _raise(error):
    """Raise what the scan reported, as duplicity's own code would have raised it."""
    from duplicity import diffdir, path

    if isinstance(error, BaseException):
        raise error
    kind, message, errno, filename = error
    if kind == "diffdir":
        raise diffdir.DiffDirException(message)
    if kind == "path":
        raise path.PathException(message)
    if kind == "os":
        if errno is None:
            raise OSError(message)
        raise OSError(errno, message, filename)
    if kind == "tarread":
        import tarfile

        raise tarfile.ReadError(message)
    raise RuntimeError(message)


def _sig_ropath(index, sig):
    """The ``ROPath`` ``sigtar2path_iter`` makes of a signature entry."""
    from duplicity.path import ROPath, StatResult

    difftype, kind, mode, uid, gid, mtime, size, link, devnums, data = sig
    ropath = ROPath(index)
    ropath.difftype = difftype
    if kind is None:
        return ropath
    ropath.type = kind
    if kind == "sym":
        ropath.symtext = link
    elif kind in ("chr", "blk"):
        ropath.devnums = devnums
    ropath.mode = mode
    ropath.stat = StatResult()
    ropath.stat.st_uid, ropath.stat.st_gid = uid, gid
    ropath.stat.st_mtime = mtime
    ropath.stat.st_size = size
    if kind == "reg":
        ropath.setfileobj(io.BytesIO(data if data is not None else b""))
    return ropath


def _delta_iter(module, path_iter, sig_files, sig_fileobj, line):
    """``get_delta_iter`` with the engine's scan in place of the walk, signatures and compare."""
    from duplicity import config, log, robust, util
    from duplicity.path import Path, ROPath

    stats = module.stats
    sig_tar = util.make_tarfile("w", sig_fileobj) if sig_fileobj else None
    debug = log.getverbosity() >= log.DEBUG
    rules = engine_rules(path_iter, config, line)
    if rules is not None:
        root, feed = path_iter.rootpath.base, None
        names = [sf.name for sf in path_iter.selection_functions]
        log.Debug(f"dupcore backup: the engine walks the tree ({len(rules)} selection functions)")
    else:
        root, feed, names, rules = b"", _Feed(path_iter), [], []
        log.Debug("dupcore backup: the engine takes the paths of duplicity's selection")
    scan = _core.BackupScan(root, sig_files, copy_links=bool(config.copy_links),
                            numeric_owner=bool(config.numeric_owner), debug=debug, paths=feed,
                            rules=rules,
                            files_from=engine_files_from(path_iter) if feed is None else None)
    more = True
    while more:
        events, files, size, more, error = scan.next_batch()
        stats.SourceFiles += files
        stats.SourceFileSize += size
        for event in events:
            tag = event[0]
            if tag == "pair":
                index, new, sig = event[1:]
                if not new:
                    new_path = None
                elif feed is None:
                    new_path = Path(root, index)
                else:
                    new_path = feed.last
                    assert new_path.index == index, (new_path.index, index)
                sig_path = _sig_ropath(index, sig) if sig is not None else None
                if not new_path or not new_path.type:
                    if sig_path and sig_path.exists() and sig_path.index != ():
                        log.Info(
                            _("D %s") % (os.fsdecode(sig_path.get_relative_path())),
                            log.InfoCode.diff_file_deleted,
                            util.escape(sig_path.get_relative_path()),
                        )
                        if sig_tar:
                            ti = ROPath(sig_path.index).get_tarinfo()
                            ti.name = f"deleted/{util.uindex(sig_path.index)}"
                            sig_tar.addfile(ti)
                        stats.add_deleted_file(sig_path)
                        yield ROPath(sig_path.index)
                elif not sig_path or new_path != sig_path:
                    delta_path = robust.check_common_error(
                        module.delta_iter_error_handler,
                        module.get_delta_path,
                        (new_path, sig_path, sig_tar),
                    )
                    if delta_path:
                        module.log_delta_path(delta_path, new_path, stats)
                        yield delta_path
                    else:
                        stats.Errors += 1
                else:
                    stats.add_unchanged_file(new_path)
            else:
                log_event(event, stats, warning_word(line), names)
        if error is not None:
            _raise(error)
    stats.close()
    if sig_tar:
        sig_tar.close()
    for f in sig_files:
        f.close()


def warning_word(line: str) -> str:
    """How the release line spells the start of two of the walk's warnings."""
    return "Warning" if line in ("2.2.x", "2.1.x") else "WARNING"


def log_event(event, stats, warning, names):
    """Log a line of the walk or of the signatures with duplicity's words (``warning``: how
    the release line spells the start of two of them)."""
    from duplicity import log, util

    tag, arg = event[0], event[1] if len(event) > 1 else None
    if tag == "comparing":
        new, sig = event[1], event[2]
        log.Debug(_("Comparing %s and %s") % (None if new is None else util.uindex(new),
                                               None if sig is None else util.uindex(sig)))
    elif tag == "examining":
        log.Debug(f"Selection: examining path {os.fsdecode(arg)}")
    elif tag == "no_functions":
        log.Debug("Selection:     + no selection functions found. Including")
    elif tag == "result":
        log.Debug(f"Selection:     result: {event[2]!s:4} from function: {names[arg]}")
    elif tag == "verdict":
        log.Debug(VERDICTS[arg])
    elif tag == "present_unreadable":
        log.Warn(_("Error accessing possibly locked file %s") % os.fsdecode(arg),
                 log.WarningCode.cannot_read, util.escape(os.fsdecode(arg)))
        stats.Errors += 1
    elif tag == "selecting_scanned":
        log.Log(_("Selecting %s") % os.fsdecode(arg), 6)
    elif tag == "selecting":
        log.Debug(_("Selecting %s") % os.fsdecode(arg))
    elif tag == "socket":
        log.Info(_("Skipping socket %s") % os.fsdecode(arg), log.InfoCode.skipping_socket,
                 util.escape(arg))
    elif tag == "init_error":
        log.Warn(_("Error initializing file %s") % os.fsdecode(arg),
                 log.WarningCode.cannot_iterate, util.escape(arg))
    elif tag == "cannot_stat":
        log.Warn(_("Error accessing possibly locked file %s") % os.fsdecode(arg),
                 log.WarningCode.cannot_stat, util.escape(arg))
    elif tag == "cannot_read":
        log.Warn(_("Error accessing possibly locked file %s") % os.fsdecode(arg),
                 log.WarningCode.cannot_read, util.escape(arg))
        stats.Errors += 1
    elif tag == "list_error":
        log.Warn(_("Error listing directory %s") % os.fsdecode(arg))
    elif tag == "base_missing":
        log.Warn(_(WORDING[warning][0]) % os.fsdecode(arg))
    elif tag == "negative_mtime":
        log.Warn(_(WORDING[warning][1]) % os.fsdecode(arg))


def install_diffdir(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.diffdir``: ``DirDelta_WriteSig`` scans through the engine."""
    from dupcore.stock import Stock

    needed = ("DirDelta_WriteSig", "get_delta_path", "log_delta_path",
              "delta_iter_error_handler", "DeltaTarBlockIter", "DummyBlockIter")
    missing = [n for n in needed if not hasattr(module, n)]
    if missing:
        raise Stock("diffdir lacks " + ", ".join(missing))
    original = module.DirDelta_WriteSig
    if getattr(original, "__dupcore__", False):
        return "DirDelta_WriteSig (Rust scan)"

    def DirDelta_WriteSig(path_iter, sig_infp_list, newsig_outfp):
        from duplicity import config, log, progress, statistics

        why = unsupported(path_iter, sig_infp_list, config)
        if why:
            log.Info(f"dupcore backup: stock ({why})")
            return original(path_iter, sig_infp_list, newsig_outfp)
        module.stats = statistics.StatsDeltaProcess()
        delta_iter = _delta_iter(module, path_iter, _sig_files(sig_infp_list), newsig_outfp,
                                 adapter.line)
        if config.dry_run or (config.progress and not progress.tracker.has_collected_evidence()):
            return module.DummyBlockIter(delta_iter)
        return module.DeltaTarBlockIter(delta_iter)

    DirDelta_WriteSig.__wrapped__ = original
    DirDelta_WriteSig.__doc__ = original.__doc__
    DirDelta_WriteSig.__dupcore__ = True
    module.DirDelta_WriteSig = DirDelta_WriteSig
    return "DirDelta_WriteSig (Rust scan)"
