"""The import machinery: duplicity modules served by dupcore or patched right after loading.

The start-up finder (:mod:`dupcore._startup`) hands every ``duplicity.*`` import to
:func:`find_spec`. A module a component replaces is served from dupcore
(``duplicity._librsync`` -> ``dupcore._librsync``); a module with hooks is loaded by its own
loader, then the hooks of the active components run on it (:mod:`dupcore.components`).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from dupcore import activation
from dupcore.components import registered
from dupcore.stock import Stock


class _AliasLoader:
    """Loader that serves an already-imported dupcore module under a duplicity module name."""

    def __init__(self, module):
        self.module = module

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        """Return the dupcore module itself, so both names share one module object."""
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to execute: the module is already initialised."""


class _HookLoader:
    """Wraps a module's real loader and runs dupcore's hooks after the module executes."""

    def __init__(self, loader, fullname):
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        """Delegate to the real loader."""
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
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


def find_spec(fullname: str, path: Sequence[str] | None = None,
              target: ModuleType | None = None) -> ModuleSpec | None:
    """Spec for a duplicity module dupcore replaces or hooks; None lets the import go on as usual."""
    try:
        return _find_spec(fullname, path, target)
    except Exception as exc:  # noqa: BLE001 - never break duplicity because of dupcore
        if activation.decision() is not None:
            activation.decision().notes.append(f"error while importing {fullname}: {exc!r}")
        return None


def _find_spec(fullname, path, target):
    dec = activation.decide()
    for comp in registered():
        st = dec.components[comp.name]
        if not st.active:
            continue
        provider = comp.replaces.get(fullname)
        if provider is None:
            continue
        try:
            module = importlib.import_module(provider)
        except Exception as exc:  # noqa: BLE001
            activation.mark_stock(comp.name, f"cannot load {provider}: {type(exc).__name__}: {exc}")
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module))
    if fullname != activation.BANNER_MODULE and not any(
        fullname in comp.hooks and dec.components[comp.name].active
        for comp in registered()
    ):
        return None
    spec = _real_spec(fullname, path, target)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return None
    spec.loader = _HookLoader(spec.loader, fullname)
    return spec


def _run_hooks(fullname, module):
    dec = activation.decision()
    for comp in registered():
        hook = comp.hooks.get(fullname)
        st = dec.components[comp.name]
        if hook is None or not st.active:
            continue
        try:
            detail = hook(module, dec.adapter)
        except Stock as why:
            activation.mark_stock(comp.name, str(why))
            continue
        except Exception as exc:  # noqa: BLE001
            activation.mark_stock(comp.name, f"install into {fullname} failed: {type(exc).__name__}: {exc}")
            continue
        if detail:
            st.details.append(detail)
    if fullname == activation.BANNER_MODULE:
        activation.install_banner(module)
