"""Activation: the start-up hook, switches, version adapters, the component registry, status."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import textwrap

import pytest
from dupcore import adapters
from helpers import TESTS, clean_env, run_duplicity

DATA = TESTS.parent / "python" / "dupcore.data" / "purelib"


def py(code, mode="dupcore", **env):
    """Run code in a fresh interpreter of this environment; return stdout (must succeed)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=clean_env(mode=mode, **env), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


BACKEND = """
import sys
import duplicity.librsync as l
print("dupcore" if l._librsync is sys.modules.get("dupcore._librsync") else l._librsync.__name__)
"""


def test_startup_is_cheap():
    """At interpreter start only dupcore, its start-up hook and its environment reader are
    imported, and the hook is in."""
    out = py("""
        import sys
        print(sorted(m for m in sys.modules if m.startswith(("dupcore", "duplicity"))))
        print(any(getattr(f, "_dupcore_finder", False) for f in sys.meta_path))
    """)
    assert out.splitlines() == ["['dupcore', 'dupcore._env', 'dupcore._startup']", "True"]


@pytest.mark.parametrize("value", ["0", "off", "false", "no"])
def test_dupcore_0_installs_nothing(value):
    """DUPCORE=0 (or off/false/no): no finder, and duplicity loads its own _librsync."""
    out = py("""
import sys
print(any(getattr(f, "_dupcore_finder", False) for f in sys.meta_path))
""" + BACKEND, DUPCORE=value)
    assert out.splitlines() == ["False", "duplicity._librsync"]


def test_default_uses_dupcore_engine_and_classes():
    """By default duplicity.librsync runs on the dupcore engine with dupcore's classes."""
    out = py(BACKEND + """
import dupcore.librsync as fast
print(l.DeltaFile is fast.DeltaFile, l.SigGenerator is fast.SigGenerator)
""")
    assert out.splitlines() == ["dupcore", "True True"]


def test_disable_one_component():
    """DUPCORE_DISABLE=librsync-files keeps duplicity's classes but still uses the engine."""
    out = py(BACKEND + """
import dupcore.librsync as fast
from dupcore import activation
print(l.DeltaFile is fast.DeltaFile)
print(activation.decision().components["librsync-files"].reason)
""", DUPCORE_DISABLE="librsync-files")
    assert out.splitlines() == ["dupcore", "False", "disabled by DUPCORE_DISABLE"]


def test_disable_librsync_and_all():
    """DUPCORE_DISABLE=librsync or all: stock _librsync; an unknown name is reported."""
    assert py(BACKEND, DUPCORE_DISABLE="librsync").splitlines()[0] == "duplicity._librsync"
    out = py(BACKEND + """
from dupcore import activation
d = activation.decision()
print(d.active_names(), d.notes)
""", DUPCORE_DISABLE="all, bogus")
    assert out.splitlines() == [
        "duplicity._librsync", "[] ['DUPCORE_DISABLE names unknown components: bogus']"]


def test_unknown_duplicity_version_stays_stock():
    """An unrecognised duplicity version keeps everything stock and the Info line says why."""
    out = py("""
        import duplicity
        duplicity.__version__ = "1.2.3"
        import duplicity.librsync as l
        from dupcore import activation
        print(l._librsync.__name__)
        print(activation.banner_text())
    """)
    name, banner = out.splitlines()
    assert name == "duplicity._librsync"
    assert banner.startswith("dupcore ") and "inactive, duplicity 1.2.3 runs stock" in banner
    assert "not a recognised release" in banner


@pytest.mark.parametrize(("version", "line"), [
    ("3.2.1", "3.2.x"), ("3.2.0rc1", "3.2.x"), ("3.0.7", "3.0.x"), ("3.0.2", "3.0.x"),
    ("2.2.4", "2.2.x"), ("2.1.0", "2.1.x"), ("0.8.22", "0.8.22"),
    ("0.8.21", None), ("1.2.3", None), ("3.1.0", None), ("4.0.0", None), ("junk", None),
    (None, None),
])
def test_adapter_lines(version, line):
    """Release lines map to their adapters; anything else is not recognised."""
    adapter, reason = adapters.adapter_for(version)
    assert (adapter.line if adapter else None) == line, reason
    if adapter:
        assert adapter.has_sigfile == (line != "3.2.x")
        assert adapter.gzip_volume_footer == (line == "3.2.x")
        assert adapter.best_effort == (line == "0.8.22")


def test_registry_hooks_run_after_module_load():
    """A registered component's hook runs once its module executed; failures leave it stock."""
    out = py("""
        from dupcore import activation
        from dupcore.activation import Component, Stock, register
        seen = []
        def ok(module, adapter):
            seen.append((module.__name__, adapter.line, hasattr(module, "GPGFile")))
            return "patched"
        def refuse(module, adapter):
            raise Stock("not for this test")
        def broken(module, adapter):
            raise RuntimeError("boom")
        register(Component("t-ok", "test", hooks={"duplicity.gpg": ok}))
        register(Component("t-refuse", "test", hooks={"duplicity.gpg": refuse}))
        register(Component("t-broken", "test", hooks={"duplicity.gpg": broken}))
        register(Component("t-na", "test", applies=lambda a: "not applicable here",
                           hooks={"duplicity.gpg": ok}))
        import duplicity.gpg
        comps = activation.decision().components
        print(seen)
        for n in ("t-ok", "t-refuse", "t-broken", "t-na"):
            print(n, comps[n].active, comps[n].reason, comps[n].details)
    """)
    lines = out.splitlines()
    assert lines[0] == "[('duplicity.gpg', '3.2.x', True)]"
    assert lines[1] == "t-ok True for duplicity 3.2.x (3.2.1) ['patched']"
    assert lines[2] == "t-refuse False not for this test []"
    assert lines[3] == "t-broken False install into duplicity.gpg failed: RuntimeError: boom []"
    assert lines[4] == "t-na False not applicable here []"


def test_pep829_start_entry_point():
    """The .start file names a callable entry point; the .pth imports the same module."""
    start = (DATA / "dupcore_activate.start").read_text().split()
    assert start == ["dupcore._startup:activate"]
    assert callable(pkgutil.resolve_name(start[0]))
    assert "import dupcore._startup" in (DATA / "dupcore_activate.pth").read_text()


def _status(mode="dupcore", **env):
    proc = subprocess.run([sys.executable, "-m", "dupcore", "status", "--json"],
                          env=clean_env(mode=mode, **env), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_status_tells_the_truth():
    """status reports what duplicity really loaded, on, off and partly disabled."""
    on = _status()
    comps = {c["name"]: c for c in on["components"]}
    assert on["duplicity_version"] == "3.2.1" and on["adapter"] == "3.2.x (3.2.1)"
    assert on["hook_installed"] and comps["librsync"]["active"]
    assert on["librsync_backend"].startswith("dupcore._librsync")
    assert on["librsync_mode"] == "2.3.4" and not on["problems"]
    off = _status(mode="stock")
    assert not off["hook_installed"]
    assert not any(c["active"] for c in off["components"])
    assert {c["reason"] for c in off["components"]} == {"DUPCORE=0"}
    assert off["librsync_backend"].startswith("duplicity._librsync")
    part = _status(DUPCORE_DISABLE="librsync")
    comps = {c["name"]: c for c in part["components"]}
    assert not comps["librsync"]["active"]
    assert part["librsync_backend"].startswith("duplicity._librsync")


def test_status_text_and_cli_usage():
    """The text status names dupcore, duplicity, Python and each component."""
    out = subprocess.run([sys.executable, "-m", "dupcore", "status"], env=clean_env(),
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    for word in ("dupcore", "duplicity  3.2.1", "python", "librsync", "active", "librsync mode"):
        assert word in out.stdout
    bad = subprocess.run([sys.executable, "-m", "dupcore", "nonsense"], env=clean_env(),
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


@pytest.mark.e2e
def test_cli_logs_one_info_line(tmp_path):
    """duplicity -v info shows exactly one dupcore line; at the default verbosity none."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x" * 1000)
    url = f"file://{tmp_path}/t"
    args = ["full", "--no-encryption", "--archive-dir", tmp_path / "c", tmp_path / "src", url]
    res = run_duplicity([*args[:1], "-v", "info", *args[1:]], clean_env())
    lines = [ln for ln in res.output.splitlines() if ln.startswith(b"dupcore ")]
    assert len(lines) == 1, res.text()
    assert b" active on duplicity 3.2.x (3.2.1): librsync [engine librsync 2.3.4" in lines[0]
    quiet = run_duplicity(["collection-status", "--archive-dir", tmp_path / "c", url],
                          clean_env())
    assert b"dupcore" not in quiet.output
