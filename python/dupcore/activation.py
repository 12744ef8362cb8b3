"""Activation: which dupcore components run inside the current duplicity, and how they get there.

The start-up finder (:mod:`dupcore._startup`) hands every ``duplicity.*`` import to
:func:`find_spec` here. On the first one, dupcore reads ``duplicity.__version__``, picks the
version adapter (:mod:`dupcore.adapters`) and decides, component by component, whether it runs:

* ``DUPCORE=0`` disables everything (the finder is never installed);
* ``DUPCORE_DISABLE=librsync,...`` (or ``all``) keeps the named components stock;
* an unrecognised duplicity version keeps every component stock.

A component is registered with :func:`register` and has

* ``name`` (what ``DUPCORE_DISABLE`` and ``python -m dupcore status`` use),
* ``applies(adapter)`` returning ``None`` when it can run on that release line, else the reason,
* ``replaces``: duplicity modules served by a dupcore module instead
  (``{"duplicity._librsync": "dupcore._librsync"}``),
* ``hooks``: functions ``hook(module, adapter)`` run right after a duplicity module has executed
  (e.g. patch ``duplicity.librsync.DeltaFile`` once ``duplicity.librsync`` is loaded). A hook may
  return a short text describing what it installed, or raise :class:`Stock` to keep the component
  stock with a reason.

To add a component (volumes, hashing, OpenPGP...), write a module with the install functions and
call ``register(Component(...))`` in :func:`_register_builtin_components` below.

When anything is active, duplicity's log shows one Info line after its start-up banner naming the
dupcore version and the active components; when nothing is, the Info line says why.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Callable

from dupcore import _env, adapters
from dupcore.stock import Stock

BANNER_MODULE = "duplicity.dup_main"


@dataclass
class Component:
    """One replaceable part of duplicity (see the module docstring)."""

    name: str
    summary: str
    applies: Callable[[adapters.Adapter], str | None] = lambda adapter: None
    replaces: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Callable] = field(default_factory=dict)


@dataclass
class ComponentState:
    """Whether a component is active in this process, and why (or why not)."""

    name: str
    summary: str
    active: bool
    reason: str
    details: list[str] = field(default_factory=list)

    def describe(self):
        """One-line text: ``name: active (details)`` or ``name: stock (reason)``."""
        if self.active:
            extra = "; ".join(self.details) if self.details else self.reason
            return f"{self.name}: active ({extra})"
        return f"{self.name}: stock ({self.reason})"


@dataclass
class Decision:
    """What dupcore decided for the running duplicity."""

    duplicity_version: str | None
    adapter: adapters.Adapter | None
    adapter_reason: str
    components: dict[str, ComponentState]
    notes: list[str] = field(default_factory=list)
    banner_logged: bool = False

    def active_names(self):
        """Names of the components that are active."""
        return [s.name for s in self.components.values() if s.active]


_REGISTRY: dict[str, Component] = {}
_decision: Decision | None = None


def register(component):
    """Add (or replace) a component in the registry; call before duplicity is imported."""
    _REGISTRY[component.name] = component
    return component


def components():
    """The registered components, in registration order."""
    return list(_REGISTRY.values())


def dupcore_version():
    """dupcore's version (from the extension module, else the installed metadata)."""
    try:
        from dupcore import _core

        return _core.__version__
    except Exception:  # noqa: BLE001,S110
        pass
    try:
        from importlib.metadata import version

        return version("dupcore")
    except Exception:  # noqa: BLE001
        return "unknown"


disabled_components = _env.disabled_components


def evaluate(duplicity_version):
    """Decide each component's state for a duplicity version under the current environment."""
    adapter, reason = adapters.adapter_for(duplicity_version)
    disabled = disabled_components()
    states = {}
    notes = []
    unknown = sorted(disabled - set(_REGISTRY) - {"all"})
    if unknown:
        notes.append("DUPCORE_DISABLE names unknown components: {}".format(", ".join(unknown)))
    for comp in _REGISTRY.values():
        if _env.disabled():
            st = ComponentState(comp.name, comp.summary, False, "DUPCORE=0")
        elif "all" in disabled or comp.name in disabled:
            st = ComponentState(comp.name, comp.summary, False, "disabled by DUPCORE_DISABLE")
        elif adapter is None:
            st = ComponentState(comp.name, comp.summary, False, reason)
        else:
            why_not = comp.applies(adapter)
            if why_not:
                st = ComponentState(comp.name, comp.summary, False, why_not)
            else:
                st = ComponentState(comp.name, comp.summary, True,
                                    f"for duplicity {adapter.label}")
        states[comp.name] = st
    return Decision(duplicity_version, adapter, reason, states, notes)


def _duplicity_version():
    mod = sys.modules.get("duplicity")
    version = getattr(mod, "__version__", None) if mod is not None else None
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("duplicity")
        except Exception:  # noqa: BLE001
            version = None
    return version


def decision():
    """The decision for this process, made on the first ``duplicity.*`` import (else None)."""
    return _decision


def _decide():
    global _decision
    if _decision is None:
        _decision = evaluate(_duplicity_version())
    return _decision


def _stock(name, reason):
    st = _decision.components[name]
    st.active = False
    st.reason = reason


# --------------------------------------------------------------------------- import machinery


class _AliasLoader:
    """Loader that serves an already-imported dupcore module under a duplicity module name."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        """Return the dupcore module itself, so both names share one module object."""
        return self.module

    def exec_module(self, module):
        """Nothing to execute: the module is already initialised."""


class _HookLoader:
    """Wraps a module's real loader and runs dupcore's hooks after the module executes."""

    def __init__(self, loader, fullname):
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec):
        """Delegate to the real loader."""
        return self._loader.create_module(spec)

    def exec_module(self, module):
        """Execute the module normally, then install the hooks registered for it."""
        self._loader.exec_module(module)
        _run_hooks(self._fullname, module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _real_spec(fullname, path, target):
    for finder in sys.meta_path:
        if getattr(finder, "_dupcore_finder", False):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def find_spec(fullname, path=None, target=None):
    """Spec for a duplicity module dupcore replaces or hooks; None lets the import go on as usual."""
    try:
        return _find_spec(fullname, path, target)
    except Exception as exc:  # noqa: BLE001 - never break duplicity because of dupcore
        if _decision is not None:
            _decision.notes.append(f"error while importing {fullname}: {exc!r}")
        return None


def _find_spec(fullname, path, target):
    dec = _decide()
    for comp in _REGISTRY.values():
        st = dec.components[comp.name]
        if not st.active:
            continue
        provider = comp.replaces.get(fullname)
        if provider is None:
            continue
        try:
            module = importlib.import_module(provider)
        except Exception as exc:  # noqa: BLE001
            _stock(comp.name, f"cannot load {provider}: {type(exc).__name__}: {exc}")
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module))
    if fullname != BANNER_MODULE and not any(
        fullname in comp.hooks and dec.components[comp.name].active
        for comp in _REGISTRY.values()
    ):
        return None
    spec = _real_spec(fullname, path, target)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return None
    spec.loader = _HookLoader(spec.loader, fullname)
    return spec


def _run_hooks(fullname, module):
    dec = _decision
    for comp in _REGISTRY.values():
        hook = comp.hooks.get(fullname)
        st = dec.components[comp.name]
        if hook is None or not st.active:
            continue
        try:
            detail = hook(module, dec.adapter)
        except Stock as why:
            _stock(comp.name, str(why))
            continue
        except Exception as exc:  # noqa: BLE001
            _stock(comp.name, f"install into {fullname} failed: {type(exc).__name__}: {exc}")
            continue
        if detail:
            st.details.append(detail)
    if fullname == BANNER_MODULE:
        _install_banner(module)


# --------------------------------------------------------------------------- the Info banner


def banner_text(dec=None):
    """The one Info line dupcore adds to duplicity's log."""
    dec = dec or _decision
    ver = dupcore_version()
    active = [s for s in dec.components.values() if s.active]
    stock = [s for s in dec.components.values() if not s.active]
    if active:
        text = "dupcore {} active on duplicity {}: {}".format(
            ver, dec.adapter.label, ", ".join(
                "{} [{}]".format(s.name, "; ".join(s.details) or s.summary) for s in active))
        if stock:
            text += "; stock: " + ", ".join(f"{s.name} ({s.reason})" for s in stock)
        return text
    if dec.adapter is None:
        why = dec.adapter_reason
    elif not dec.components:
        why = "no components registered"
    else:
        why = "; ".join(f"{s.name}: {s.reason}" for s in stock)
    return f"dupcore {ver} inactive, duplicity {dec.duplicity_version} runs stock: {why}"


def _log_banner():
    dec = _decision
    if dec is None or dec.banner_logged:
        return
    dec.banner_logged = True
    from duplicity import log

    log.Info(banner_text(dec))


def _install_banner(dup_main):
    original = getattr(dup_main, "log_startup_parms", None)
    if original is None:  # no start-up banner in this duplicity: log now
        _log_banner()
        return

    def log_startup_parms(*args, **kwargs):
        result = original(*args, **kwargs)
        _log_banner()
        return result

    log_startup_parms.__wrapped__ = original
    log_startup_parms.__doc__ = original.__doc__
    dup_main.log_startup_parms = log_startup_parms


# --------------------------------------------------------------------------- built-in components


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
    :mod:`dupcore.librsync`; its ``install(librsync_module)`` replaces duplicity's and may return
    the names it replaced. They need the ``librsync`` engine component to be active.
    """
    from dupcore import _librsync as engine

    if getattr(module, "_librsync", None) is not engine:
        raise Stock("needs the librsync engine component")
    fast = importlib.import_module("dupcore.librsync")
    replaced = fast.install(module)
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
        hooks={"duplicity.dup_tarfile": _tar_read_after_import},
    ))
    register(Component(
        name="openpgp",
        summary="in-process OpenPGP (GPGFile/GPGWriteFile), stock gpg per file where not served",
        applies=_openpgp_applies,
        hooks={"duplicity.gpg": _openpgp_gpg_after_import},
    ))


_register_builtin_components()

__all__ = [
    "Component",
    "ComponentState",
    "Decision",
    "Stock",
    "banner_text",
    "components",
    "decision",
    "disabled_components",
    "dupcore_version",
    "evaluate",
    "find_spec",
    "register",
]
