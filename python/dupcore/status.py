"""``python -m dupcore status``: what dupcore does inside the duplicity of this interpreter.

It imports duplicity the way duplicity itself does (so the start-up hook runs for real) and reports
what actually got loaded, not only what the configuration says.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import sys
from collections.abc import Sequence
from typing import Any

from dupcore import _env

PTH_NAME = "dupcore_activate.pth"


def _site_dirs():
    dirs = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    return [d for d in dirs if d]


def find_pth() -> str | None:
    """Path of the installed ``dupcore_activate.pth``, or None."""
    for d in _site_dirs():
        p = os.path.join(d, PTH_NAME)
        if os.path.exists(p):
            return p
    return None


def _script_interpreter(script):
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode("utf-8", "replace").split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0] if parts else None


def collect() -> dict[str, Any]:
    """Gather the status as a dict (imports duplicity and duplicity.librsync)."""
    from dupcore import _startup, activation

    info = {
        "dupcore_version": activation.dupcore_version(),
        "dupcore_path": os.path.dirname(os.path.abspath(activation.__file__)),
        "python": sys.executable,
        "python_version": sys.version.split()[0],
        "pth": find_pth(),
        "hook_installed": _startup.installed(),
        "env": _env.settings(),
        "problems": [],
        "warnings": [],
    }
    try:
        import duplicity
    except Exception as exc:  # noqa: BLE001
        info["duplicity_version"] = None
        info["problems"].append(f"duplicity cannot be imported here: {type(exc).__name__}: {exc}")
        info["components"] = []
        return info
    info["duplicity_version"] = getattr(duplicity, "__version__", None)
    info["duplicity_path"] = os.path.dirname(os.path.abspath(duplicity.__file__))
    local = os.path.join(os.path.dirname(sys.executable), "duplicity")
    on_path = shutil.which("duplicity")
    info["duplicity_cli"] = local if os.path.exists(local) else on_path
    info["duplicity_cli_python"] = (_script_interpreter(info["duplicity_cli"])
                                    if info["duplicity_cli"] else None)
    interp = _script_interpreter(on_path) if on_path else None
    if on_path and interp and os.path.realpath(interp) != os.path.realpath(sys.executable):
        info["warnings"].append(
            f"the duplicity on PATH ({on_path}) runs {interp}, not this interpreter: dupcore must be installed "
            "into that environment to affect it")

    backend = None
    try:
        import duplicity.librsync as dlib

        backend = dlib._librsync
    except Exception as exc:  # noqa: BLE001
        info["problems"].append(f"duplicity.librsync cannot be imported: {type(exc).__name__}: {exc}")
    info["librsync_backend"] = _describe_backend(backend)

    dec = activation.decision()
    if dec is None:
        dec = activation.evaluate(info["duplicity_version"])
        if not _startup.disabled_by_env():
            why = (f"the start-up hook is not installed ({PTH_NAME} not processed: is dupcore installed in "
                   "this interpreter's site-packages?)")
            if _startup.DupcoreFinder.failed is not None:
                why = f"dupcore.activation failed to load: {_startup.DupcoreFinder.failed!r}"
            for st in dec.components.values():
                if st.active:
                    st.active, st.reason = False, why
    info["adapter"] = dec.adapter.label if dec.adapter else None
    info["adapter_reason"] = dec.adapter_reason
    info["best_effort"] = bool(dec.adapter and dec.adapter.best_effort)
    info["notes"] = list(dec.notes)
    info["components"] = [
        {"name": s.name, "summary": s.summary, "active": s.active, "reason": s.reason,
         "details": list(s.details)}
        for s in dec.components.values()
    ]
    info["banner"] = activation.banner_text(dec)
    try:
        from dupcore import deflate

        how = deflate.choice()
        info["deflate"] = how.describe()
        if how.problem:
            info["problems"].append(how.problem)
    except Exception as exc:  # noqa: BLE001
        info["deflate"] = None
        info["problems"].append(f"the deflate setting cannot be read: {exc}")
    try:
        from dupcore import _core

        info["cpu"] = _core.cpu_paths()
    except Exception as exc:  # noqa: BLE001
        info["cpu"] = None
        info["problems"].append(f"the engine's CPU paths cannot be read: {exc}")
    # cross-check configuration against what really got loaded
    try:
        from dupcore import _librsync as engine

        info["librsync_mode"] = engine.librsync_mode()
        engine_loaded = backend is engine
    except Exception as exc:  # noqa: BLE001
        info["librsync_mode"] = None
        engine_loaded = False
        info["problems"].append(f"dupcore._librsync cannot be imported: {exc}")
    lib_state = next((c for c in info["components"] if c["name"] == "librsync"), None)
    if lib_state is not None and backend is not None and lib_state["active"] != engine_loaded:
        info["problems"].append(
            "librsync reported {} but duplicity.librsync uses {}".format("active" if lib_state["active"] else "stock", info["librsync_backend"]))
    return info


def _describe_backend(backend):
    if backend is None:
        return None
    name = getattr(backend, "__name__", repr(backend))
    try:
        version = backend.get_version()
    except Exception:  # noqa: BLE001
        version = "no get_version()"
    origin = getattr(backend, "__file__", None)
    return "{}, {}{}".format(name, version, (f" ({origin})") if origin else "")


def format_text(info: dict[str, Any]) -> str:
    """Render the status dict for a terminal."""
    out = []
    add = out.append
    add("dupcore {} ({})".format(info["dupcore_version"], info["dupcore_path"]))
    add("python     {} {}".format(info["python"], info["python_version"]))
    if info.get("duplicity_version"):
        add("duplicity  {} ({})".format(info["duplicity_version"], info["duplicity_path"]))
        add("CLI        {}{}".format(info.get("duplicity_cli") or "not on PATH",
                                 (" -> {}".format(info["duplicity_cli_python"]))
                                 if info.get("duplicity_cli_python") else ""))
    else:
        add("duplicity  not importable")
    if info["hook_installed"]:
        hook = "installed (%s)" % (info["pth"] or "start-up entry point")
    elif info["env"].get("DUPCORE") is not None and not info["hook_installed"]:
        hook = "off (DUPCORE={})".format(info["env"]["DUPCORE"])
    else:
        hook = f"NOT installed ({PTH_NAME} missing from site-packages)"
    add(f"hook       {hook}")
    if info["env"]:
        add("env        {}".format(" ".join("{}={}".format(*kv) for kv in sorted(info["env"].items()))))
    if "adapter" in info:
        add("adapter    %s" % (info["adapter"] or "none: " + info["adapter_reason"])
            + (" (best effort)" if info.get("best_effort") else ""))
    for c in info.get("components", []):
        state = "active" if c["active"] else "stock "
        why = "; ".join(c["details"]) if (c["active"] and c["details"]) else c["reason"]
        add(f"  {c['name']:<15} {state}  {why}")
    if info.get("librsync_backend"):
        add("duplicity.librsync uses {}".format(info["librsync_backend"]))
    if info.get("librsync_mode"):
        add("librsync mode {}".format(info["librsync_mode"]))
    if info.get("deflate"):
        add("deflate    {}".format(info["deflate"]))
    if info.get("cpu") is not None:
        add("cpu        {}".format(", ".join(info["cpu"]) or "portable code only (no SIMD path)"))
    for n in info.get("notes", []):
        add(f"note: {n}")
    for w in info.get("warnings", []):
        add(f"warning: {w}")
    for p in info["problems"]:
        add(f"PROBLEM: {p}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the status; ``--json`` for machine-readable output. Exit 1 on problems."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dupcore status", description=__doc__)
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_text(info))
    return 1 if info["problems"] else 0
