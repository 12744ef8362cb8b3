"""PEP 517 build backend for source builds: maturin's, after checking what the build needs.

A build from the sdist or a checkout compiles sequoia's gpg-agent client, whose build script
needs the Cap'n Proto compiler ``capnp``. Without it that build script panics deep inside cargo's
output; this backend stops first with one message naming the package to install.
"""

from __future__ import annotations

import os
import shutil

import maturin
from maturin import (  # noqa: F401  (the hooks pip calls, unchanged)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

MISSING_CAPNP = """\
dupcore: building from source needs the Cap'n Proto compiler `capnp` (sequoia's gpg-agent
client is generated with it), and there is none on PATH. Install it and run pip again:
    Debian/Ubuntu:     sudo apt-get install capnproto
    Fedora:            sudo dnf install capnproto
    macOS (Homebrew):  brew install capnp
On x86_64 and aarch64 Linux, `pip install dupcore` takes a prebuilt wheel instead."""


def _check_build_tools() -> None:
    """Stop with MISSING_CAPNP when the OpenPGP engine (a default feature) cannot be built."""
    if "--no-default-features" in os.environ.get("MATURIN_PEP517_ARGS", ""):
        return
    if shutil.which("capnp") is None:
        raise SystemExit(MISSING_CAPNP)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """maturin's build_wheel, after the check."""
    _check_build_tools()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """maturin's build_editable, after the check."""
    _check_build_tools()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
