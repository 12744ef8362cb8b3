"""The components dupcore can put into duplicity: their registry and the built-in ones.

A component is registered with :func:`register` and has

* ``name`` (what ``DUPCORE_DISABLE`` and ``python -m dupcore status`` use),
* ``applies(adapter)`` returning ``None`` when it can run on that release line, else the reason,
* ``replaces``: duplicity modules served by a dupcore module instead
  (``{"duplicity._librsync": "dupcore._librsync"}``),
* ``hooks``: functions ``hook(module, adapter)`` run right after a duplicity module has executed
  (e.g. patch ``duplicity.librsync.DeltaFile`` once ``duplicity.librsync`` is loaded). A hook may
  return a short text describing what it installed, or raise :class:`~dupcore.stock.Stock` to
  keep the component stock with a reason.

To add a component, write a module with its install functions and register it in
:func:`_register_builtin_components` below. Which components run is decided by
:mod:`dupcore.activation`; :mod:`dupcore.importer` puts them in place.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from dupcore import _env, adapters
from dupcore.stock import Stock


@dataclass
class Component:
    """One replaceable part of duplicity (see the module docstring)."""

    name: str
    summary: str
    applies: Callable[[adapters.Adapter], str | None] = lambda adapter: None
    replaces: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Callable] = field(default_factory=dict)


_REGISTRY: dict[str, Component] = {}


def register(component: Component) -> Component:
    """Add (or replace) a component in the registry; call before duplicity is imported."""
    _REGISTRY[component.name] = component
    return component


def registered() -> list[Component]:
    """The registered components, in registration order."""
    return list(_REGISTRY.values())


def _librsync_after_import(module, adapter):
    """Hook on ``duplicity.librsync``: check the engine took, then offer the whole-file classes."""
    from dupcore import _librsync as engine

    if getattr(module, "_librsync", None) is not engine:
        backend = getattr(getattr(module, "_librsync", None), "__name__", "unknown")
        raise Stock(f"duplicity.librsync fell back to {backend}")
    if not _env.librsync_mode():
        # write the librsync bytes that the stock duplicity of this release line writes
        engine.set_librsync_mode(adapter.librsync_format)
    return f"engine {engine.get_version()}, {engine.librsync_mode()} format"


def _librsync_files_after_import(module, adapter):
    """Hook on ``duplicity.librsync``: put dupcore's whole-file classes in place.

    The classes (``SigGenerator``, ``DeltaFile``, ``PatchedFile``) live in
    :mod:`dupcore.librsync`; its ``install(module, adapter)`` hook replaces duplicity's and may
    return the names it replaced. They need the ``librsync`` engine component to be active.
    """
    from dupcore import _librsync as engine

    if getattr(module, "_librsync", None) is not engine:
        raise Stock("needs the librsync engine component")
    fast = importlib.import_module("dupcore.librsync")
    replaced = fast.install(module, adapter)
    if not replaced:
        replaced = [n for n in ("SigGenerator", "DeltaFile", "PatchedFile")
                    if getattr(module, n, None) is getattr(fast, n, object())]
    return "replaces " + ", ".join(replaced)


def _librsync_files_applies(adapter):
    try:
        fast = importlib.import_module("dupcore.librsync")
    except Exception as exc:  # noqa: BLE001
        return f"dupcore.librsync unavailable: {type(exc).__name__}: {exc}"
    if not callable(getattr(fast, "install", None)):
        return "dupcore.librsync has no install() yet"
    return None


def _librsync_applies(adapter):
    try:
        importlib.import_module("dupcore._librsync")
    except Exception as exc:  # noqa: BLE001
        return f"dupcore._librsync unavailable: {type(exc).__name__}: {exc}"
    return None


def _engine_applies(attribute, what):
    """``applies`` check: the extension module of this build has ``attribute``."""

    def applies(adapter):
        try:
            from dupcore import _core

            getattr(_core, attribute)
        except Exception as exc:  # noqa: BLE001
            return f"dupcore {what} unavailable: {type(exc).__name__}: {exc}"
        return None

    return applies


def _lazy_hook(module_name, function):
    """Hook that imports ``dupcore.<module_name>`` only when duplicity's module loads."""

    def hook(module, adapter):
        return getattr(importlib.import_module(f"dupcore.{module_name}"), function)(module, adapter)

    return hook


_volumes_applies = _engine_applies("VolumeWriter", "volume engine")
_openpgp_applies = _engine_applies("PgpWriter", "OpenPGP engine")
_volumes_gpg_after_import = _lazy_hook("volumes", "install_gpg")
_volumes_path_after_import = _lazy_hook("volumes", "install_path")
_tar_diffdir_after_import = _lazy_hook("tarblocks", "install_diffdir")
_openpgp_gpg_after_import = _lazy_hook("openpgp", "install_gpg")
_tar_read_after_import = _lazy_hook("tarheaders", "install_tarfile")
_restore_dup_main_after_import = _lazy_hook("restore", "install_dup_main")
_manifests_collections_after_import = _lazy_hook("manifests", "install_collections")
_manifests_dup_main_after_import = _lazy_hook("manifests", "install_dup_main")
_chains_after_import = _lazy_hook("chains", "install_collections")
_backup_diffdir_after_import = _lazy_hook("backup", "install_diffdir")
_gpg_check_after_import = _lazy_hook("gpg_check", "install_gpg")
_gpg_check_config_after_import = _lazy_hook("gpg_check", "start")


def _gpg_check_applies(adapter):
    if adapter.line != "3.2.x":
        return f"duplicity {adapter.line} runs no gpg test at start-up"
    return None


#: Release lines whose restore, verify and backup paths the engines follow (2.1.x's differ from
#: 2.2.x's only in the name of duplicity's tar module, ``duplicity.tarfile``).
ENGINE_LINES = ("3.2.x", "3.0.x", "2.2.x", "2.1.x")


def _engine_on_lines(attribute, what):
    """``applies`` check: the engine is in this build and follows the adapter's release line
    (3.2.x, 3.0.x, 2.2.x, 2.1.x)."""

    def applies(adapter):
        missing = _engine_applies(attribute, what)(adapter)
        if missing:
            return missing
        if adapter.line not in ENGINE_LINES:
            return f"the {what} follows duplicity 3.2.x, 3.0.x, 2.2.x and 2.1.x, not {adapter.line}"
        return None

    return applies


_backup_applies = _engine_on_lines("BackupScan", "backup scan")
_restore_applies = _engine_on_lines("RestoreEngine", "restore engine")


def _tar_applies(adapter):
    try:
        from dupcore import tarblocks
    except Exception as exc:  # noqa: BLE001
        return f"dupcore tar writer unavailable: {type(exc).__name__}: {exc}"
    return tarblocks.tarfile_unsupported()


def _tar_read_applies(adapter):
    missing = _engine_applies("tar_frombuf", "tar header reader")(adapter)
    return missing or _tar_applies(adapter)


def _register_builtin_components():
    register(Component(
        name="librsync",
        summary="Rust librsync engine (signatures, deltas, patches)",
        applies=_librsync_applies,
        replaces={"duplicity._librsync": "dupcore._librsync"},
        hooks={"duplicity.librsync": _librsync_after_import},
    ))
    register(Component(
        name="librsync-files",
        summary="whole-file SigGenerator/DeltaFile/PatchedFile on the Rust engine",
        applies=_librsync_files_applies,
        hooks={"duplicity.librsync": _librsync_files_after_import},
    ))
    register(Component(
        name="volumes",
        summary="parallel gzip/plain volume writing with inline SHA1/MD5, read-ahead gunzip",
        applies=_volumes_applies,
        hooks={"duplicity.gpg": _volumes_gpg_after_import,
               "duplicity.path": _volumes_path_after_import},
    ))
    register(Component(
        name="tar",
        summary="difftar headers and blocks written in Rust (CPython tobuf() PAX bytes)",
        applies=_tar_applies,
        hooks={"duplicity.diffdir": _tar_diffdir_after_import},
    ))
    register(Component(
        name="tar-read",
        summary="difftar and sigtar headers read in Rust (TarInfo.frombuf)",
        applies=_tar_read_applies,
        hooks={"duplicity.dup_tarfile": _tar_read_after_import,
               "duplicity.tarfile": _tar_read_after_import},
    ))
    register(Component(
        name="openpgp",
        summary="in-process OpenPGP (GPGFile/GPGWriteFile), stock gpg per file where not served",
        applies=_openpgp_applies,
        hooks={"duplicity.gpg": _openpgp_gpg_after_import},
    ))
    register(Component(
        name="restore",
        summary="restore engine: whole chains read, patched and written in Rust",
        applies=_restore_applies,
        hooks={"duplicity.dup_main": _restore_dup_main_after_import},
    ))
    register(Component(
        name="backup",
        summary="backup scan: source tree walk, previous signatures and the unchanged test in "
                "Rust",
        applies=_backup_applies,
        hooks={"duplicity.diffdir": _backup_diffdir_after_import},
    ))
    register(Component(
        name="gpg-check",
        summary="duplicity's start-up gpg test started ahead, alongside its start-up",
        applies=_gpg_check_applies,
        hooks={"duplicity.config": _gpg_check_config_after_import,
               "duplicity.gpg": _gpg_check_after_import},
    ))
    register(Component(
        name="manifests",
        summary="a damaged manifest stops with one line naming it, never an older state or a "
                "traceback",
        hooks={"duplicity.dup_collections": _manifests_collections_after_import,
               "duplicity.dup_main": _manifests_dup_main_after_import},
    ))
    register(Component(
        name="chains",
        summary="an incremental killed before its signatures were saved does not block the chain",
        hooks={"duplicity.dup_collections": _chains_after_import},
    ))


_register_builtin_components()
