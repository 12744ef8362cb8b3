"""duplicity's own test suite as a regression gate for dupcore.

Takes duplicity's ``testing/`` tree from Debian's source package (pinned version and sha256,
through ``apt-get source`` with a private source list, so the system's apt setup is untouched),
runs its unit and functional tests against duplicity from PyPI in a venv of its own with dupcore
installed and active, and compares with the committed list of tests that pass on stock duplicity
in the same venv (``DUPCORE=0``). Every stock-passing test must pass with dupcore.

    python tests/upstream/run.py                  # the whole suite with dupcore, compared
    python tests/upstream/run.py -k gpg           # a part of it (pytest's -k), compared
    python tests/upstream/run.py --record-stock   # run stock and rewrite the committed list

Needs root or a writable apt cache for the download, ``par2`` and ``gpg`` (see .ci/run).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = REPO / ".cache" / "upstream"

# The testing tree of the 3.0.x line, as Debian ships it (trixie's duplicity 3.0.4-1).
DEBIAN_SOURCE = "duplicity=3.0.4-1"
DEBIAN_SUITE = "trixie"
ORIG = "duplicity_3.0.4.orig.tar.bz2"
ORIG_SHA256 = "33770478a3386d8bbf9a16e57112817957a722de3f83e992d9fb8cf69bbcd5b3"
ORIG_TOP = "duplicity-rel.3.0.4"
# The duplicity the tests run against: the newest 3.0.x wheel on PyPI, and the few packages
# its tests import (backends' client libraries are left out; their tests fail alike on stock).
DUPLICITY = "duplicity==3.0.7"
TEST_PACKAGES = ["fasteners==0.20", "pexpect==4.9.0", "pytest==9.2.0", "python-gettext==5.0",
                 "setuptools==84.2.1"]
STOCK_LIST = HERE / "stock-passing-3.0.x.txt"
SUITES = ["testing/unit", "testing/functional"]
PYTEST_INI = """[pytest]
addopts = --capture=fd -p no:randomly -p no:xdist -p no:cacheprovider
markers =
    slow: test runs >= 10 secs
filterwarnings =
    ignore:.*use of fork\\(\\).*:DeprecationWarning
"""


def sh(cmd, **kw):
    """Run a command, echoing it; fail loudly."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_source() -> Path:
    """The pinned orig tarball from Debian's archive, checked against its sha256."""
    orig = CACHE / ORIG
    if orig.exists() and sha256(orig) == ORIG_SHA256:
        return orig
    apt = CACHE / "apt"
    parts = apt / "sources.list.d"
    lists = apt / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "upstream-tests.sources").write_text(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\n"
        f"Suites: {DEBIAN_SUITE}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    opts = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={parts}",
            "-o", f"Dir::State::Lists={lists}", "-o", "APT::Sandbox::User=root", "-qq"]
    sh(["apt-get", *opts, "update"])
    sh(["apt-get", *opts, "source", "--download-only", DEBIAN_SOURCE], cwd=CACHE)
    got = sha256(orig)
    if got != ORIG_SHA256:
        raise SystemExit(f"{orig}: sha256 {got}, expected {ORIG_SHA256}")
    return orig


def make_venv() -> Path:
    """A venv with duplicity from PyPI, the test packages and this checkout's dupcore."""
    venv = CACHE / "venv-3.0.x"
    py = venv / "bin" / "python"
    stamp = venv / ".packages"
    want = "\n".join([DUPLICITY, *TEST_PACKAGES])
    if not py.exists() or not stamp.exists() or stamp.read_text() != want:
        shutil.rmtree(venv, ignore_errors=True)
        sh([sys.executable, "-m", "venv", venv])
        sh([py, "-m", "pip", "install", "-q", "--no-deps", "--only-binary", ":all:", DUPLICITY])
        sh([py, "-m", "pip", "install", "-q", *TEST_PACKAGES])
        stamp.write_text(want)
    wheels = CACHE / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    # the Makefile passes the features of `make build` (ISA-L where its tools are installed)
    extra = os.environ.get("MATURIN_ARGS", "").split()
    sh([sys.executable, "-m", "maturin", "build", "--release", "--quiet", *extra, "--out", wheels],
       cwd=REPO)
    (wheel,) = wheels.glob("dupcore-*.whl")
    sh([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel])
    return venv


def make_tree(orig: Path, venv: Path) -> Path:
    """duplicity's testing/ tree, with its duplicity/ pointing at the venv's installed one."""
    tree = CACHE / "tree-3.0.x"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    keep = (f"{ORIG_TOP}/testing/", f"{ORIG_TOP}/COPYING")
    with tarfile.open(orig) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(keep):
                m.name = m.name[len(ORIG_TOP) + 1:]
                members.append(m)
        tar.extractall(tree, members=members, filter="tar")
    site = subprocess.run([venv / "bin" / "python", "-c",
                           "import duplicity, os; print(os.path.dirname(duplicity.__file__))"],
                          check=True, capture_output=True, text=True,
                          env={**os.environ, "DUPCORE": "0"}).stdout.strip()
    (tree / "duplicity").symlink_to(site)
    (tree / "pytest.ini").write_text(PYTEST_INI)
    return tree


def run_suite(venv: Path, tree: Path, mode: str, extra: list[str]) -> dict[str, str]:
    """Run the suite; return test id -> outcome (passed, failed, error, skipped)."""
    xml = CACHE / f"results-{mode}.xml"
    xml.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env.pop("PYTHONPATH", None)
    env["DUPCORE"] = "0" if mode == "stock" else "1"
    env["TMPDIR"] = str(CACHE / f"tmp-{mode}")
    shutil.rmtree(env["TMPDIR"], ignore_errors=True)
    os.makedirs(env["TMPDIR"])
    cmd = [venv / "bin" / "python", "-m", "pytest", "-q", "-rfE", f"--junitxml={xml}",
           *SUITES, *extra]
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=tree, env=env, check=False)
    if not xml.exists():
        raise SystemExit("the upstream suite wrote no results")
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            outcomes[tid] = "failed"
        elif "error" in kinds:
            outcomes[tid] = "error"
        elif "skipped" in kinds:
            outcomes[tid] = "skipped"
        else:
            outcomes[tid] = "passed"
    return outcomes


def check_active(venv: Path):
    """dupcore must be active on this duplicity, else the comparison means nothing."""
    out = subprocess.run([venv / "bin" / "python", "-m", "dupcore", "status"], check=False,
                         capture_output=True, text=True).stdout
    print(out)
    if "openpgp         active" not in out or "adapter    3.0.x" not in out:
        raise SystemExit("dupcore is not active on the upstream suite's duplicity")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record-stock", action="store_true",
                    help="run on stock duplicity and rewrite the committed passing list")
    ap.add_argument("-k", dest="keyword", help="only tests matching this pytest expression")
    args = ap.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    orig = fetch_source()
    venv = make_venv()
    tree = make_tree(orig, venv)
    extra = ["-k", args.keyword] if args.keyword else []
    if args.record_stock:
        outcomes = run_suite(venv, tree, "stock", extra)
        passing = sorted(t for t, o in outcomes.items() if o == "passed")
        STOCK_LIST.write_text(
            f"# Tests of duplicity's {ORIG_TOP} testing/ tree that pass on stock {DUPLICITY}\n"
            f"# (tests/upstream/run.py --record-stock; {len(passing)} of {len(outcomes)}).\n"
            + "".join(f"{t}\n" for t in passing))
        print(f"recorded {len(passing)} stock-passing tests of {len(outcomes)} in {STOCK_LIST}")
        return 0
    check_active(venv)
    stock = {ln for ln in STOCK_LIST.read_text().splitlines() if ln and not ln.startswith("#")}
    outcomes = run_suite(venv, tree, "dupcore", extra)
    ran = set(outcomes)
    missing = sorted(t for t in stock if t not in ran and not args.keyword)
    regressions = sorted(t for t in stock & ran if outcomes[t] != "passed")
    gained = sorted(t for t, o in outcomes.items() if o == "passed" and t not in stock)
    passed = sum(1 for o in outcomes.values() if o == "passed")
    print(f"\nupstream suite with dupcore: {passed} of {len(outcomes)} passed; "
          f"{len(stock & ran)} of them pass on stock")
    for t in gained:
        print(f"  passes with dupcore, not on stock: {t}")
    for t in missing:
        print(f"  stock-passing test did not run: {t}")
    for t in regressions:
        print(f"  REGRESSION (passes on stock): {t} [{outcomes[t]}]")
    bad = len(regressions) + len(missing)
    print(f"{len(stock & ran) - len(regressions)} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
