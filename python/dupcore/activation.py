"""Activation: which dupcore components run inside the current duplicity, and why.

On the first ``duplicity.*`` import, :mod:`dupcore.importer` asks :func:`decide`: dupcore reads
``duplicity.__version__``, picks the version adapter (:mod:`dupcore.adapters`) and decides,
component by component (:mod:`dupcore.components`), whether it runs:

* ``DUPCORE=0`` disables everything (the finder is never installed);
* ``DUPCORE_DISABLE=librsync,...`` (or ``all``) keeps the named components stock;
* an unrecognised duplicity version keeps every component stock.

When anything is active, duplicity's log shows one Info line after its start-up banner naming the
dupcore version and the active components; when nothing is, the Info line says why.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import ModuleType

from dupcore import _env, adapters
from dupcore.components import Component, register
from dupcore.components import registered as components
from dupcore.stock import Stock

BANNER_MODULE = "duplicity.dup_main"


@dataclass
class ComponentState:
    """Whether a component is active in this process, and why (or why not)."""

    name: str
    summary: str
    active: bool
    reason: str
    details: list[str] = field(default_factory=list)

    def describe(self) -> str:
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

    def active_names(self) -> list[str]:
        """Names of the components that are active."""
        return [s.name for s in self.components.values() if s.active]


_decision: Decision | None = None


def dupcore_version() -> str:
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


def evaluate(duplicity_version: str | None) -> Decision:
    """Decide each component's state for a duplicity version under the current environment."""
    adapter, reason = adapters.adapter_for(duplicity_version)
    disabled = disabled_components()
    states = {}
    notes = []
    unknown = sorted(disabled - {c.name for c in components()} - {"all"})
    if unknown:
        notes.append("DUPCORE_DISABLE names unknown components: {}".format(", ".join(unknown)))
    for comp in components():
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


def decision() -> Decision | None:
    """The decision for this process, made on the first ``duplicity.*`` import (else None)."""
    return _decision


def decide() -> Decision:
    """The decision for this process, made now if it was not made yet."""
    global _decision
    if _decision is None:
        _decision = evaluate(_duplicity_version())
    return _decision


def mark_stock(name: str, reason: str) -> None:
    """Turn an active component stock, with the reason (a hook refused or failed)."""
    st = _decision.components[name]
    st.active = False
    st.reason = reason


# --------------------------------------------------------------------------- the Info banner


def banner_text(dec: Decision | None = None) -> str:
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


def install_banner(dup_main: ModuleType) -> None:
    """Log the Info line right after duplicity's own start-up banner."""
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


__all__ = [
    "BANNER_MODULE",
    "Component",
    "ComponentState",
    "Decision",
    "Stock",
    "banner_text",
    "components",
    "decide",
    "decision",
    "disabled_components",
    "dupcore_version",
    "evaluate",
    "install_banner",
    "mark_stock",
    "register",
]
