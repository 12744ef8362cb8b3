"""Restore through the Rust engine (:mod:`dupcore._core` ``RestoreEngine``).

duplicity's ``restore`` builds an iterator of patched ``ROPath`` objects
(``restore_get_patched_rop_iter``: volumes, tar members, collation, deltas) and writes it with
``patchdir.Write_ROPaths``, one Python object and log call per step. While ``restore`` runs,
dupcore puts a plan in place of that iterator and has ``Write_ROPaths`` hand the plan to the
engine, so duplicity's own ``restore`` keeps deciding everything around it (dry runs, the
"nothing restored" errors of its release line).

The engine reads each backup set's volumes as duplicity's ``tarfile`` reads them, applies every
delta of the chain in Rust and writes files, links, fifos, devices and directories with
duplicity's attribute rules. Volumes still come from duplicity's own
``restore_get_enc_fileobj`` (its backend, hash check, decryption and signature check), on
worker threads ahead of the engine; with them, below debug verbosity, a volume of a
``file://`` backend whose hash is the manifest's is opened where it lies instead of copied to a
temporary file first (at debug level duplicity logs that copy, so it is made) (``DUPCORE_RESTORE_AHEAD``), and small files are written by
a pool of threads (``DUPCORE_RESTORE_WRITERS``). Every line duplicity would log
(``Writing …``, warnings, progress) is logged here with duplicity's words, in its order.

``verify`` uses the same engine: its entries become the ``ROPath`` objects duplicity's verify
compares with the local tree, and with ``--compare-data`` the engine compares each regular
file's data with the local file in Rust, so verify's report and counts stay duplicity's.

Restores the engine does not take stay stock: ``--dry-run``, ``--rename``, restore selection
(``--include``/``--exclude`` on restore, 3.2.x), and anything but a plain local target.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import os
import shutil
import tarfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING

from dupcore import _core, _env, manifests, openpgp
from dupcore import volumes as volume_files
from dupcore.fatal import fatal_error

if TYPE_CHECKING:
    from dupcore.adapters import Adapter

#: MiB of volume data (gzip, or OpenPGP) decoded ahead while the engine runs, shared by every
#: volume open at once (the current one of each backup set and those fetched ahead): the
#: volumes fetched ahead decode in parallel with the one being read, memory bounded by this.
READ_AHEAD_BUDGET_MIB = 64
#: MiB decompressed ahead per volume, at most and at least.
READ_AHEAD_MIB = (1, 32)


def read_ahead_mib(sets: int, ahead: int) -> int:
    """MiB each volume is decompressed ahead with ``sets`` backup sets and ``ahead`` volumes
    fetched ahead: the budget shared, within :data:`READ_AHEAD_MIB`."""
    low, high = READ_AHEAD_MIB
    return max(low, min(high, READ_AHEAD_BUDGET_MIB // max(1, sets + ahead)))


def _(text):
    return getattr(builtins, "_", lambda s: s)(text)


class _Plan:
    """What ``restore_get_patched_rop_iter`` would have iterated, for the engine."""

    def __init__(self, col_stats):
        self.col_stats = col_stats


def unsupported(dup_main: ModuleType, config: ModuleType, verify: bool = False) -> str | None:
    """None when the engine can do this restore (or verify), else why not."""
    if getattr(config, "dry_run", False):
        return "--dry-run"
    if getattr(config, "rename", None):
        return "--rename"
    code = dup_main.restore_get_patched_rop_iter.__code__
    if not verify and "restore_selection" in code.co_varnames and getattr(
            config, "select_opts", None):
        return "file selection on restore"
    local = getattr(config, "local_path", None)
    if not isinstance(getattr(local, "name", None), bytes):
        return "no local target path"
    return None


def _local_volume(backend, filename, volume_info):
    """A volume of a ``file://`` backend opened where it lies, when its hash is the manifest's:
    what ``restore_get_enc_fileobj`` returns, without its copy of the volume to a temporary
    file. None where that function must run (another backend, no hash in the manifest, a
    signature to check, a hash that differs, any error): it then logs and raises as stock."""
    from duplicity import config, file_naming, gpg, path
    from duplicity.backends.localbackend import LocalBackend

    inner = getattr(backend, "backend", None)
    if type(inner) is not LocalBackend:
        return None
    try:
        parsed = file_naming.parse(filename)
        hash_pair = volume_info.get_best_hash()
        if parsed is None or not hash_pair:
            return None
        if parsed.encrypted and getattr(config.gpg_profile, "sign_key", None):
            return None
        source = inner.remote_pathdir.append(filename)
        if not source.isreg() or gpg.get_hash(hash_pair[0], source) != hash_pair[1]:
            return None
        return path.DupPath(source.name, parseresults=parsed).filtered_open("rb")
    except Exception:  # noqa: BLE001 - the stock function meets the same problem and reports it
        return None


def _direct_reader(fobj):
    """dupcore's Rust reader inside a volume's file object ``fobj`` (bare, or in duplicity's
    ``FileobjHooked`` that deletes its temporary copy on close), for the engine to read
    without the GIL: a ``GzipReadFile``'s, which the engine takes over, or an open decrypting
    ``GPGFile``'s, which the engine shares (``GPGFile.close()`` still drains it and checks its
    MDC and signers). Closing ``fobj`` later still runs duplicity's hooks. None for anything
    else, which is read through ``fobj.read``."""
    inner = getattr(fobj, "fileobj", fobj)
    if type(inner) is volume_files.GzipReadFile:
        return inner._reader
    if type(inner) is openpgp.GPGFile:
        return inner._r  # None when writing; a closed one the engine reads through ``fobj``
    return None


class _Volumes:
    """Each backup set's volumes, fetched by duplicity's ``restore_get_enc_fileobj`` (ahead, on
    worker threads), handed to the engine in order, closed when the engine is done with them."""

    def __init__(self, dup_main, log, sets, index, ahead):
        self.dm, self.log = dup_main, log
        self.plans = [deque((backup_set, manifest, n)
                            for n in manifest.get_containing_volumes(index))
                      for backup_set, manifest in sets]
        self.num_vols = sum(len(backup_set) for backup_set, _manifest in sets)
        self.cur_vol = 0
        self.ahead = ahead
        self.pending = [deque() for _ in self.plans]
        self.current = [None] * len(self.plans)
        self.in_flight = 0
        #: whether a volume of each set has been fetched or submitted yet
        self.started = [False] * len(self.plans)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="dupcore-fetch") \
            if ahead else None

    def _fetch(self, backup_set, manifest, vol_num):
        name = backup_set.volume_name_dict[vol_num]
        info = manifest.volume_info_dict[vol_num]
        # at debug level duplicity logs its temporary copy of the volume: then it is made
        quiet = self.log.getverbosity() < self.log.DEBUG
        in_place = _local_volume(backup_set.backend, name, info) if self.ahead and quiet else None
        if in_place is not None:
            return in_place
        return self.dm.restore_get_enc_fileobj(backup_set.backend, name, info)

    def _top_up(self, reading: int | None = None):
        """Starts fetches while fewer than ``ahead`` volumes are waiting: first the first volume
        of each set not started (the engine reads every set's first entry before it can write
        anything, so a set's next volume fetched early would keep one worker from them), then
        the next one of the set being read (``reading``), then nearest sets first."""
        if not self.pool:
            return
        order = [s for s, started in enumerate(self.started) if not started]
        if reading is not None:
            order.append(reading)
        for s in (*order, *range(len(self.plans))):
            if self.in_flight >= self.ahead:
                return
            self._submit(s)

    def _progress(self):
        self.cur_vol += 1
        self.log.Progress(_("Processed volume %d of %d") % (self.cur_vol, self.num_vols),
                          self.cur_vol, self.num_vols)

    def next(self, s: int) -> object | None:
        """The next volume of set ``s`` (None after its last), the previous one closed."""
        previous, self.current[s] = self.current[s], None
        if previous is not None:
            assert not previous.close(), "Closing current file pointer returned a truthy value"
            self._progress()
        while True:
            if self.pending[s]:
                future = self.pending[s].popleft()
                self.in_flight -= 1
                self._top_up(s)
                fobj = future.result()
            elif self.plans[s]:
                self.started[s] = True
                fobj = self._fetch(*self.plans[s].popleft())
            else:
                self._top_up()
                return None
            self._top_up(s)
            if fobj is not None:
                self.current[s] = fobj
                return fobj
            self._progress()

    def _submit(self, s):
        """Starts fetching set ``s``'s next volume unless one is already waiting."""
        if self.pool and self.plans[s] and not self.pending[s]:
            self.started[s] = True
            self.pending[s].append(self.pool.submit(self._fetch, *self.plans[s].popleft()))
            self.in_flight += 1

    def close(self) -> None:
        """Closes what is still open (after an error) and stops the workers."""
        for pending in self.pending:
            for future in pending:
                future.cancel()
                try:
                    fobj = future.result()
                except BaseException:  # noqa: BLE001 - the restore already failed
                    fobj = None
                if fobj is not None:
                    _quiet_close(fobj)
            pending.clear()
        for s, fobj in enumerate(self.current):
            if fobj is not None:
                _quiet_close(fobj)
            self.current[s] = None
        if self.pool:
            self.pool.shutdown(wait=True)


def _quiet_close(fobj):
    with contextlib.suppress(Exception):  # cleaning up after an error already raised
        fobj.close()


def _exception(desc):
    """The exception duplicity's code would raise for an engine error description."""
    if isinstance(desc, BaseException):
        return desc
    kind, message, errno_, filename, filename2 = desc
    if kind == "tarread":
        return tarfile.ReadError(message)
    if kind == "patchdir":
        from duplicity import patchdir

        return patchdir.PatchDirException(message.format(os.fsdecode(filename)))
    if kind == "path":
        from duplicity import path

        return path.PathException(message)
    if kind == "librsync":
        from duplicity import librsync

        return librsync.librsyncError(message)
    if kind == "assertion":
        return AssertionError(message)
    if kind == "aborted":
        return KeyboardInterrupt()
    if errno_ is None:
        return OSError(message)
    return OSError(errno_, message, filename, None, filename2)


#: How the running release line spells the start of its warnings ("Warning" on 2.2.x and 2.1.x),
#: set when the engine is installed.
_warning = "WARNING"
#: Three of the restore's warnings, as each spelling writes them.
_WORDING = {
    "WARNING": ("IGNORED_ERROR: WARNING: ignoring error as requested: %s: %s",
                "WARNING: %s has negative mtime, treating as 0.",
                "WARNING: oldindex %s >= newindex %s"),
    "Warning": ("IGNORED_ERROR: Warning: ignoring error as requested: %s: %s",
                "Warning: %s has negative mtime, treating as 0.",
                "Warning: oldindex %s >= newindex %s"),
}


def _log_events(events, log, util):
    for ev in events:
        kind = ev[0]
        if kind == "writing":
            _kind, path, typ = ev
            log.Info(_("Writing %s of type %s") % (os.fsdecode(path), typ),
                     log.InfoCode.patch_file_writing, f"{util.escape(path)} {typ}")
        elif kind == "error_processing":
            _kind, desc, filename = ev
            exc = _exception(desc)
            log.Warn(_("Error '%s' processing %s") % (exc, os.fsdecode(filename)),
                     log.WarningCode.cannot_process, util.escape(filename))
        elif kind == "error_patching":
            _kind, desc, filename = ev
            exc = _exception(desc)
            log.Warn(_("Error '%s' patching %s") % (util.uexc(exc), os.fsdecode(filename)),
                     log.WarningCode.cannot_process, util.escape(filename))
        elif kind == "skipping":
            path = ev[1]
            log.Warn(_("Skipping %s because of previous error") % os.fsdecode(path),
                     log.WarningCode.process_skipped, util.escape(path))
        elif kind == "ignored_error":
            exc = _exception(ev[1])
            log.Warn(_(_WORDING[_warning][0]) % (exc.__class__.__name__, util.uexc(exc)))
        elif kind == "negative_mtime":
            log.Warn(_(_WORDING[_warning][1]) % os.fsdecode(ev[1]))
        elif kind == "old_index":
            log.Warn(_(_WORDING[_warning][2]) % (util.uindex(ev[1]), util.uindex(ev[2])))
        elif kind == "making_directory":
            log.Debug(_("Making directory %s") % os.fsdecode(ev[1]))
        elif kind == "deleting_tree":
            log.Debug(_("Deleting tree %s") % os.fsdecode(ev[1]))


def _setup(config, col_stats):
    """The start of ``restore_get_patched_rop_iter``: the restore index, the backup sets at
    --time with their manifests (read once), and the backend's download batch."""
    from duplicity import dup_time, log

    index = tuple(config.restore_path.split(b"/")) if config.restore_path else ()
    time = config.restore_time or dup_time.curtime
    backup_chain = col_stats.get_backup_chain_at_time(time)
    assert backup_chain, (
        f"No backup chain found for restore time {dup_time.timetostring(time)}; "
        f"available chains: {col_stats.all_backup_chains}"
    )
    sets = [(backup_set, backup_set.get_manifest())
            for backup_set in backup_chain.get_sets_at_time(time)]
    _check_manifests(config, sets, index)
    if hasattr(config.backend, "pre_process_download_batch"):
        file_names = []
        for backup_set, manifest in sets:
            for vol_num in manifest.get_containing_volumes(index):
                try:
                    file_names.append(backup_set.volume_name_dict[vol_num])
                except KeyError as e:
                    if config.ignore_errors:
                        log.Warn(f"difftar volume {vol_num} not found, ignoring per --ignore-errors.")
                    else:
                        raise fatal_error(
                            f"difftar volume {vol_num} not found in backup.\n"
                            f"Please check your archive and try again.\n"
                            f"Or use --ignore-errors to ignore this error.\n"
                            f"Error: {e}"
                        ) from None
        config.backend.pre_process_download_batch(file_names)
    return index, sets


def _check_manifests(config, sets, index):
    """Stops on a manifest that does not match its backup set (see
    :func:`dupcore.manifests.check_set`), and warns about volumes the manifest gives no hash for
    (duplicity would stop with an ``UnboundLocalError``)."""
    from duplicity import log

    for backup_set, manifest in sets:
        manifests.check_set(config, backup_set, manifest)
        for vol_num in manifest.get_containing_volumes(index):
            info = manifest.volume_info_dict.get(vol_num)
            if info is not None and not info.get_best_hash():
                log.Warn(f"Manifest {manifests.remote_name(backup_set)} has no hash for volume "
                         f"{vol_num}: its data is not checked against the manifest.")


def _check_hash(stock):
    """``restore_check_hash`` that accepts a volume without a hash in the manifest (warned
    about by ``_check_manifests``) instead of failing with ``UnboundLocalError``."""

    def restore_check_hash(volume_info, vol_path):
        if not volume_info.get_best_hash():
            return True, None, None
        return stock(volume_info, vol_path)

    return restore_check_hash


def _file_system_type(directory) -> str:
    """The type of the file system holding ``directory`` (``/proc/self/mounts``), or ""."""
    target = os.path.realpath(os.fsdecode(directory))
    best, kind = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return ""
    return kind


def _spill_into(directory):
    """Lets the volumes fetched ahead decode in parallel into spool files in ``directory``
    (``DUPCORE_RESTORE_SPILL_MIB``; by default only where ``directory`` is memory-backed)."""
    try:
        free_mib = shutil.disk_usage(os.fsdecode(directory)).free >> 20
        ram_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    except (OSError, ValueError):
        free_mib = ram_mib = 0
    memory_backed = _file_system_type(directory) in ("tmpfs", "ramfs")
    mib = _env.restore_spill_mib(free_mib, ram_mib, memory_backed)
    _core.set_restore_spill(os.fsdecode(directory) if mib > 0 else None, mib << 20)


#: Events of a verify the caller handles (the rest are the engine's log lines).
_VERIFY_EVENTS = ("entry", "pair", "same", "local")


def _run(dup_main, config, col_stats, verify=None, local=None):
    """Runs the engine: yields its entries (verify) and returns whether anything was found.
    With ``local`` (see ``RestoreEngine``) the engine also walks and compares the local tree."""
    from duplicity import log, tempdir, util

    index, sets = _setup(config, col_stats)
    ahead = _env.restore_ahead()
    volumes = _Volumes(dup_main, log, sets, index, ahead)
    engine = _core.RestoreEngine(
        config.local_path.name, len(sets), list(index),
        os.fsencode(tempdir.default().dir()), bool(config.numeric_owner),
        bool(getattr(config, "restore_ownership", True)), bool(config.ignore_errors),
        bool(config.force), verify, _env.restore_writers() if verify is None else 0, local,
        _env.restore_spool_memory_mib() << 20)
    saved_ahead = volume_files.read_ahead_mib
    volume_files.read_ahead_mib = read_ahead_mib(len(sets), ahead)
    stock_check = dup_main.restore_check_hash
    dup_main.restore_check_hash = _check_hash(stock_check)
    _spill_into(tempdir.default().dir())
    _core.set_restore_direct(_env.restore_direct())
    try:
        volumes._top_up()
        while True:
            what, payload, events = engine.next()
            for ev in events:
                if ev[0] in _VERIFY_EVENTS:
                    yield ev
                else:
                    _log_events((ev,), log, util)
            if what == "need":
                volume = volumes.next(payload)
                engine.give(volume, _direct_reader(volume) if volume is not None else None)
            elif what == "done":
                return bool(payload)
            elif what == "error":
                raise _exception(payload)
    finally:
        engine.close()
        volumes.close()
        _core.set_restore_spill(None)
        volume_files.read_ahead_mib = saved_ahead
        dup_main.restore_check_hash = stock_check


def _write(dup_main, config, plan):
    """``Write_ROPaths`` for a plan: the engine restores the chain; 1 if anything was found."""
    run = _run(dup_main, config, plan.col_stats)
    while True:
        try:
            next(run)
        except StopIteration as done:
            config.local_path.setdata()
            return 1 if done.value else 0


def _data_result(equal, other):
    """``compare_data`` of an entry whose data the engine compared already."""
    return 1 if equal else 0


def _ropath(index, typ, attrs, link, devnums, equal):
    """The ROPath of one of the engine's entries, its data (with --compare-data) compared in
    Rust already."""
    from duplicity import path

    mode, uid, gid, mtime = attrs
    rp = path.ROPath(index)
    rp.type, rp.mode = typ, mode
    stat = path.StatResult()
    stat.st_uid, stat.st_gid, stat.st_mtime = uid, gid, mtime
    rp.stat = stat
    if typ == "sym":
        rp.symtext = link
    elif devnums is not None:
        rp.devnums = devnums
    elif typ == "reg":
        rp.compare_data = functools.partial(_data_result, equal)
    return rp


def _ropaths(dup_main, config, col_stats):
    """``restore_get_patched_rop_iter`` for verify: ROPaths from the engine's entries."""
    for _kind, index, *fields in _run(dup_main, config, col_stats,
                                      verify=bool(config.compare_data)):
        yield _ropath(index, *fields)


class _Errors:
    """Where the walk's log lines count errors (a backup's statistics; nothing in a verify)."""

    Errors = 0


def _verify_walking(dup_main, config, col_stats, rules, line):
    """``verify`` with the local tree walked, collated and compared by the engine: only the
    pairs that may differ reach duplicity's ``compare_verbose``, which logs them as it does."""
    from duplicity import log, path

    from dupcore import backup

    select = config.select
    root = select.rootpath.base
    names = [sf.name for sf in select.selection_functions]
    warning = backup.warning_word(line)
    local = (root, rules, backup.engine_files_from(select), bool(config.copy_links),
             log.getverbosity() >= log.DEBUG, config.compare_data is False)
    errors = _Errors()
    diff_count = total_count = 0
    for ev in _run(dup_main, config, col_stats, verify=bool(config.compare_data), local=local):
        tag = ev[0]
        if tag == "local":
            backup.log_event(ev[1], errors, warning, names)
            continue
        if tag == "same":
            total_count += ev[1]
            continue
        _tag, index, entry, here = ev
        backup_ropath = _ropath(index, *entry) if entry is not None else path.ROPath(index)
        current_path = path.Path(root, index) if here else path.ROPath(index)
        if not backup_ropath.compare_verbose(current_path, config.compare_data):
            diff_count += 1
        total_count += 1
    log.Notice(_("Verify complete: %s, %s.")
               % (_("%d file(s) compared") % total_count, _("%d difference(s) found") % diff_count))
    if diff_count >= 1:
        dup_main.exit_val = 1


def install_dup_main(module: ModuleType, adapter: Adapter) -> str:
    """Hook on ``duplicity.dup_main``: ``restore`` runs through the engine where it can."""
    from dupcore.stock import Stock

    needed = ("restore", "restore_get_patched_rop_iter", "restore_get_enc_fileobj")
    missing = [n for n in needed if not callable(getattr(module, n, None))]
    if missing:
        raise Stock("dup_main lacks " + ", ".join(missing))
    from dupcore import backup

    global _warning
    _warning = backup.warning_word(adapter.line)
    original = module.restore
    if getattr(original, "__dupcore__", False):
        return "restore (Rust engine)"

    def restore(col_stats):
        from duplicity import config, log, patchdir

        why = unsupported(module, config)
        if why:
            log.Info(f"dupcore restore: stock ({why})")
            return original(col_stats)
        stock_iter, stock_write = module.restore_get_patched_rop_iter, patchdir.Write_ROPaths

        def write_ropaths(base_path, rop_iter):
            if isinstance(rop_iter, _Plan) and base_path is config.local_path:
                return _write(module, config, rop_iter)
            return stock_write(base_path, rop_iter)

        module.restore_get_patched_rop_iter = _Plan
        patchdir.Write_ROPaths = write_ropaths
        try:
            return original(col_stats)
        finally:
            module.restore_get_patched_rop_iter = stock_iter
            patchdir.Write_ROPaths = stock_write

    restore.__wrapped__ = original
    restore.__doc__ = original.__doc__
    restore.__dupcore__ = True
    module.restore = restore
    done = "restore"
    if callable(getattr(module, "verify", None)):
        module.verify = _engine_verify(module, module.verify, adapter.line)
        done = "restore, verify"
    return (f"{done} (Rust engine: volumes ahead, deltas, files, data comparison and verify's "
            "local walk in Rust)")


def _engine_verify(module, original, line):
    """``verify`` with the engine's entries in place of ``restore_get_patched_rop_iter``, and
    where the engine takes the selection, its walk of the local tree in place of the loop."""

    def verify(col_stats):
        from duplicity import config, log

        from dupcore import backup

        why = unsupported(module, config, verify=True)
        if why:
            log.Info(f"dupcore verify: stock ({why})")
            return original(col_stats)
        rules = backup.engine_rules(config.select, config, line)
        if rules is not None:
            log.Debug("dupcore verify: the engine walks and compares the local tree")
            return _verify_walking(module, config, col_stats, rules, line)
        stock_iter = module.restore_get_patched_rop_iter
        module.restore_get_patched_rop_iter = functools.partial(_ropaths, module, config)
        try:
            return original(col_stats)
        finally:
            module.restore_get_patched_rop_iter = stock_iter

    verify.__wrapped__ = original
    verify.__doc__ = original.__doc__
    verify.__dupcore__ = True
    return verify
