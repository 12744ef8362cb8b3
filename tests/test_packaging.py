"""dupcore as users install it: the release wheels, the sdist, the Debian package and pipx.

* ``scripts/build-wheels`` builds the abi3 wheels for manylinux2014 x86_64 and aarch64 (maturin
  with zig) and the sdist into ``dist/``; ``auditwheel`` checks their platform tags.
* The x86_64 wheel goes into fresh venvs of the oldest and newest CPython dupcore supports, and
  duplicity 3.2.1 backs up and restores through it there.
* The aarch64 wheel runs under ``qemu-aarch64`` on Debian's aarch64 Python (its packages are
  fetched into a directory under the test cache): duplicity 3.2.1 with dupcore backs up, its
  archives are byte for byte the x86_64 engine's (tar streams and signatures), and stock duplicity
  on this machine restores them.
* ``qemu-x86_64 -cpu qemu64`` emulates an x86-64 CPU without AVX2, SHA-NI, AES-NI or PCLMULQDQ: every
  SIMD path takes its fallback there, and the archives stay the same bytes.
* ``scripts/build-deb`` packages the x86_64 wheel as ``python3-dupcore``; installed with dpkg it
  makes Debian's duplicity 0.8.22 and duply run on dupcore, and removing it leaves them stock.
* ``pipx install duplicity`` then ``pipx inject duplicity <wheel>`` gives an active dupcore.
* ``pip install`` of the sdist without the Cap'n Proto compiler stops at once with one message.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    DUPLICITY,
    PASSPHRASE,
    TESTS,
    assert_active,
    assert_same_tree,
    clean_env,
    run_duplicity,
    snapshot,
)
from test_e2e_versions import CACHE, _duply, _duply_conf

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

ROOT = TESTS.parent
DIST = Path(os.environ.get("DUPCORE_DIST", ROOT / "dist"))
DUPLICITY_VERSION = "3.2.1"
# The oldest and the newest CPython the abi3 wheel is for, each with a duplicity it runs
# (3.2.x needs Python 3.10 or newer) and the adapter line dupcore picks for it.
PYTHONS = (("3.9", "3.0.7", "3.0.x"), ("3.13", "3.2.1", "3.2.x"))
# Debian bookworm's aarch64 Python and the libraries its standard modules load.
ARM64_PACKAGES = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1",
    "libexpat1", "zlib1g", "libffi8", "libssl3", "libbz2-1.0", "liblzma5", "libuuid1",
    "libcrypt1", "libsqlite3-0", "libtinfo6", "libncursesw6", "libnsl2", "libtirpc3",
    "libdb5.3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0",
    "libcom-err2", "libkeyutils1",
)
DEB_NAME = "python3-dupcore"
SYSTEM_PYTHON = "/usr/bin/python3"


def _run(cmd, timeout=1800, **kw):
    """Run a command; fail the test with its output when it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          timeout=timeout, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(str(c) for c in cmd)} failed ({proc.returncode}):\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _env(gnupghome, mode="dupcore", **extra):
    """A duplicity run's environment with the test passphrase."""
    return clean_env(gnupghome, mode=mode, PASSPHRASE=PASSPHRASE, **extra)


def _need(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: bash scripts/install-system-deps (scripts/system-deps.txt)")


@pytest.fixture(scope="session")
def dist():
    """The wheels and the sdist, built from this tree by scripts/build-wheels."""
    _run(["bash", ROOT / "scripts" / "build-wheels", DIST],
         env=dict(os.environ, VPY=sys.executable), cwd=ROOT, timeout=3600)
    found = {}
    for arch in ("x86_64", "aarch64"):
        whl = glob.glob(str(DIST / f"dupcore-*-cp39-abi3-manylinux*_{arch}.whl"))
        assert len(whl) == 1, whl
        found[arch] = Path(whl[0])
    sdist = glob.glob(str(DIST / "dupcore-*.tar.gz"))
    assert len(sdist) == 1, sdist
    found["sdist"] = Path(sdist[0])
    return found


def _status(python_cmd, env):
    """``python -m dupcore status`` output."""
    return _run([*python_cmd, "-m", "dupcore", "status"], env=env).stdout


#: Components that only exist for some release lines: (name, the lines they apply to).
LINE_COMPONENTS = (("gpg-check", ("3.2.x",)),)


def _assert_all_active(status, line):
    assert f"adapter    {line}" in status, status
    comps = [ln for ln in status.splitlines() if ln.startswith("  ")]
    assert len(comps) >= 10, status
    stock = {ln.split()[0] for ln in comps if " stock " in ln}
    not_here = {name for name, lines in LINE_COMPONENTS if line.split()[0] not in lines}
    assert stock == not_here, status


# ------------------------------------------------------------------------------ the artefacts


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_wheel_is_abi3_manylinux2014(dist, arch):
    """auditwheel finds the wheel consistent with manylinux_2_17 (glibc 2.17) on its arch."""
    whl = dist[arch]
    assert f"-cp39-abi3-manylinux2014_{arch}." in whl.name, whl.name
    auditwheel = Path(sys.executable).parent / "auditwheel"
    out = " ".join(_run([auditwheel, "show", whl]).stdout.split())
    assert f'consistent with the following platform tag: "manylinux_2_17_{arch}"' in out, out
    # only the C library itself (libc, libm, libpthread, libdl) is linked from the system
    for lib in ("libz", "libssl", "libcrypto", "libisal", "libgcc_s", "libstdc++"):
        assert lib not in out, out
    listing = _run([sys.executable, "-m", "zipfile", "-l", whl]).stdout
    for member in ("dupcore/_core.abi3.so", "dupcore/py.typed", "dupcore/_core.pyi",
                   "dupcore_activate.pth"):
        assert member in listing, listing


def test_sdist_carries_the_sources_only(dist):
    """The sdist has the crate, the Python package and the build backend, not the fixtures."""
    listing = _run(["tar", "tzf", dist["sdist"]]).stdout.splitlines()
    names = {n.split("/", 1)[1] for n in listing if "/" in n}
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "src/lib.rs",
                   "python/dupcore/__init__.py", "scripts/build_backend.py", "README.md"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "fuzz/")) for n in names), sorted(names)[:20]
    assert dist["sdist"].stat().st_size < 2_000_000


def test_sdist_without_capnp_stops_with_one_message(dist, tmp_path):
    """pip install of the sdist where no `capnp` is on PATH stops before cargo runs."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    env = dict(os.environ, PATH=str(venv / "bin"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    t0 = time.monotonic()
    proc = subprocess.run([venv / "bin" / "pip", "install", dist["sdist"]], env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "needs the Cap'n Proto compiler `capnp`" in out, out
    assert "sudo apt-get install capnproto" in out and "brew install capnp" in out, out
    assert "Compiling" not in out and "panicked" not in out, out
    assert time.monotonic() - t0 < 300


def test_release_workflow_builds_what_make_builds():
    """.github/workflows/release.yml runs the Makefile's targets (so scripts/build-wheels) for
    the same Rust targets that script builds, and tests the artefacts before publishing."""
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    script = (ROOT / "scripts" / "build-wheels").read_text()
    assert "run: make deb" in workflow and "make test-packaging" in workflow, workflow
    targets = set(workflow.split("targets:", 1)[1].splitlines()[0].strip().split(","))
    assert targets == {f"{arch}-unknown-linux-gnu" for arch in ("x86_64", "aarch64")}
    assert "for arch in x86_64 aarch64; do" in script
    makefile = (ROOT / "Makefile").read_text()
    assert "deb: wheels" in makefile and "bash scripts/build-wheels dist" in makefile


# ------------------------------------------------------------------------------ x86_64 wheel


def _pyenv_python(version):
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                          check=False).stdout.strip() if shutil.which("pyenv") else ""
    found = sorted(glob.glob(f"{root or '/nonexistent'}/versions/{version}.*/bin/python{version}"))
    found += [p for p in (shutil.which(f"python{version}"),) if p]
    if not found:
        pytest.fail(f"Python {version} is missing (pyenv install {version})")
    return found[0]


def _duplicity_venv(python, venv, duplicity_version, *wheels):
    """A venv with duplicity from PyPI (the file backend's dependencies only) and `wheels`."""
    _run([python, "-m", "venv", venv])
    pip = venv / "bin" / "pip"
    _run([pip, "install", "-q", "--no-deps", f"duplicity=={duplicity_version}"])
    _run([pip, "install", "-q", "fasteners", "pexpect", *wheels])


@pytest.mark.parametrize("version,duplicity_version,line", PYTHONS)
def test_x86_64_wheel_in_a_fresh_venv(dist, tmp_path, states, gnupghome, version,
                                      duplicity_version, line):
    """The wheel installs into CPython 3.9 and 3.13 venvs; duplicity there runs on dupcore."""
    venv = tmp_path / "venv"
    _duplicity_venv(_pyenv_python(version), venv, duplicity_version, dist["x86_64"])
    env = _env(gnupghome)
    status = _status([venv / "bin" / "python"], env)
    _assert_all_active(status, f"{line} ({duplicity_version})")
    assert "engines built: zlib-rs, isal" in status, status
    target = f"file://{tmp_path / 'arch'}"
    res = run_duplicity(["full", "-v", "info", "--archive-dir", tmp_path / "cache",
                         states[0][0], target], env, duplicity=venv / "bin" / "duplicity")
    assert_active(res, "dupcore")
    time.sleep(1.1)
    run_duplicity(["incremental", "--allow-source-mismatch", "--archive-dir", tmp_path / "cache",
                   states[0][1], target], env, duplicity=venv / "bin" / "duplicity")
    out = tmp_path / "restored"
    run_duplicity(["restore", "--archive-dir", tmp_path / "cache2", target, out],
                  _env(gnupghome, "stock"))
    assert_same_tree(states[1][1], snapshot(out), f"stock restore of the Python {version} chain")


# ------------------------------------------------------------------------------ emulated CPUs


@pytest.fixture(scope="session")
def arm64_python():
    """Debian bookworm's aarch64 python3.11 unpacked under the test cache, run by qemu-aarch64."""
    _need("qemu-aarch64", "apt-get", "dpkg")
    root = CACHE / "arm64-debian-python"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        work = CACHE / "arm64-apt"
        shutil.rmtree(work, ignore_errors=True)
        for d in ("state/lists/partial", "cache/archives/partial", "debs"):
            (work / d).mkdir(parents=True)
        (work / "state" / "status").write_text("")
        apt = ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
               "-o", f"Dir::State={work / 'state'}",
               "-o", f"Dir::State::status={work / 'state' / 'status'}",
               "-o", f"Dir::Cache={work / 'cache'}", "-o", "Debug::NoLocking=1"]
        _run(["apt-get", *apt, "update", "-qq"])
        _run(["apt-get", *apt, "download", *[f"{p}:arm64" for p in ARM64_PACKAGES]],
             cwd=work / "debs")
        for deb in sorted((work / "debs").glob("*.deb")):
            _run(["dpkg", "-x", deb, root])
        shutil.rmtree(work, ignore_errors=True)
        (root / ".complete").write_text("bookworm arm64\n")
    cmd = ["qemu-aarch64", "-L", str(root), str(root / "usr" / "bin" / "python3.11")]
    arch = _run([*cmd, "-c", "import platform; print(platform.machine())"]).stdout.strip()
    assert arch == "aarch64", arch
    return cmd


@pytest.fixture(scope="session")
def arm64_site(dist, arm64_python, tmp_path_factory):
    """A user site of the aarch64 Python with duplicity's and dupcore's aarch64 wheels."""
    base = tmp_path_factory.mktemp("arm64-userbase")
    site = base / "lib" / "python3.11" / "site-packages"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:",
          "--platform", "manylinux2014_aarch64", "--python-version", "3.11",
          "--implementation", "cp", "--target", site, f"duplicity=={DUPLICITY_VERSION}",
          "fasteners", dist["aarch64"]])
    return base, site


def _members(target):
    """The archive's files by kind, in time order: {"sig": [bytes...], "difftar": [...]}."""
    out = {"sigtar": [], "difftar": []}
    for name in sorted(os.listdir(target)):
        for kind, members in out.items():
            if f".{kind}." in name:
                members.append(gzip.decompress((Path(target) / name).read_bytes()))
    return out


def _native_plain_chain(tmp_path, states, gnupghome):
    """The same full and incremental as the emulated runs make, natively with dupcore."""
    target = tmp_path / "native"
    env = _env(gnupghome)
    for step, src in zip(("full", "incremental"), states[0][:2]):
        run_duplicity([step, "--no-encryption", "--allow-source-mismatch", "--archive-dir",
                       tmp_path / "ncache", src,
                       f"file://{target}"], env)
        time.sleep(1.1)
    return _members(target)


def _emulated_chains(tmp_path, states, gnupghome, duplicity_cmd, env):
    """A plain and a symmetric chain (full, incremental) made by ``duplicity_cmd``; the plain
    archive members and both restored by stock duplicity natively."""
    for mode in ("plain", "sym"):
        target = tmp_path / mode
        opts = ["--no-encryption"] if mode == "plain" else []
        for step, src in zip(("full", "incremental"), states[0][:2]):
            proc = subprocess.run(
                [*duplicity_cmd, step, "-v", "info", "--allow-source-mismatch", *opts, "--archive-dir",
                 str(tmp_path / f"cache-{mode}"), os.fsdecode(src), f"file://{target}"],
                env=env, capture_output=True, check=False, timeout=1800)
            out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
            assert proc.returncode == 0, out[-6000:]
            assert " active on duplicity " in out, out[-3000:]
            time.sleep(1.1)
        restored = tmp_path / f"restored-{mode}"
        run_duplicity(["restore", *opts, "--archive-dir", tmp_path / f"rcache-{mode}",
                       f"file://{target}", restored],
                      _env(gnupghome, "stock"))
        assert_same_tree(states[1][1], snapshot(restored), f"stock restore of the {mode} chain")
    return _members(tmp_path / "plain")


def test_aarch64_wheel_under_qemu(arm64_python, arm64_site, tmp_path, states, gnupghome):
    """duplicity 3.2.1 with the aarch64 wheel on Debian's aarch64 Python (emulated): all
    components active, ISA-L built, archives byte for byte the x86_64 engine's, stock restores."""
    base, site = arm64_site
    env = _env(gnupghome, PYTHONUSERBASE=base)
    status = _status(arm64_python, env)
    _assert_all_active(status, f"3.2.x ({DUPLICITY_VERSION})")
    assert "engines built: zlib-rs, isal" in status, status
    assert "hook       installed" in status, status
    emulated = _emulated_chains(tmp_path, states, gnupghome,
                                [*arm64_python, str(site / "bin" / "duplicity")], env)
    native = _native_plain_chain(tmp_path, states, gnupghome)
    assert emulated == native


def test_simd_fallbacks_on_a_baseline_x86_64_cpu(tmp_path, states, gnupghome):
    """On an emulated x86-64 CPU without AVX2, SHA-NI, AES-NI and PCLMULQDQ every SIMD path
    takes its fallback, and the archives are the same bytes as on this CPU."""
    _need("qemu-x86_64")
    emulate = ["qemu-x86_64", "-cpu", "qemu64"]
    probe = "from dupcore import _core; print(repr(_core.cpu_paths()))"
    env = _env(gnupghome)
    assert _run([*emulate, sys.executable, "-c", probe], env=env).stdout.strip() == "[]"
    here = _run([sys.executable, "-c", probe], env=env).stdout.strip()
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if " avx2 " in flags:
        assert "md4 and rollsum: AVX2" in here, here
    if " avx512f " in flags:
        assert "md4: AVX-512" in here, here
    status = _run([*emulate, sys.executable, "-m", "dupcore", "status"], env=env).stdout
    assert "cpu        portable code only (no SIMD path)" in status, status
    emulated = _emulated_chains(tmp_path, states, gnupghome, [*emulate, sys.executable,
                                                               str(DUPLICITY)], env)
    native = _native_plain_chain(tmp_path, states, gnupghome)
    assert emulated == native


# ------------------------------------------------------------------------------ Debian package


@pytest.fixture
def installed_deb(dist, tmp_path):
    """python3-dupcore built from the x86_64 wheel and installed with dpkg; removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail("installing the .deb needs root (CI runs as root)")
    _need("dpkg", "dpkg-deb", "apt-get", "duply")
    if not Path("/usr/bin/duplicity").exists():
        pytest.fail("Debian's duplicity is missing: apt-get install duply")
    deb = _run(["bash", ROOT / "scripts" / "build-deb", dist["x86_64"], tmp_path / "deb"])
    deb = Path(deb.stdout.strip().splitlines()[-1])
    info = _run(["dpkg-deb", "-f", deb, "Package", "Architecture", "Depends"]).stdout
    assert f"Package: {DEB_NAME}" in info and "Architecture: amd64" in info, info
    assert "duplicity" in info and "python3" in info, info
    _run(["dpkg", "-i", deb])
    try:
        yield deb
    finally:
        subprocess.run(["apt-get", "remove", "-y", "-qq", DEB_NAME], capture_output=True,
                       check=False, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _system_env(gnupghome, **extra):
    env = _env(gnupghome, **extra)
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's python3, duplicity and duply
    return env


def test_debian_package_with_debian_duplicity_and_duply(installed_deb, tmp_path, states,
                                                        gnupghome):
    """The .deb makes Debian's duplicity 0.8.22 and duply run on dupcore; after `apt-get
    remove` they run stock and still restore what was made."""
    env = _system_env(gnupghome)
    status = _run([SYSTEM_PYTHON, "-m", "dupcore", "status"], env=env).stdout
    assert "adapter    0.8.22 (0.8.22) (best effort)" in status, status
    assert "/usr/lib/python3/dist-packages/dupcore_activate.pth" in status, status
    assert "  librsync        active" in status and "  openpgp         active" in status, status
    # Debian's duplicity directly: full, incremental, restore
    target = f"file://{tmp_path / 'arch'}"
    debian = Path("/usr/bin/duplicity")
    res = run_duplicity(["full", "-v", "info", "--archive-dir", tmp_path / "cache",
                         states[0][0], target], env, duplicity=debian)
    assert_active(res, "dupcore")
    time.sleep(1.1)
    run_duplicity(["incremental", "--allow-source-mismatch", "--archive-dir", tmp_path / "cache",
                   states[0][1], target], env, duplicity=debian)
    run_duplicity(["restore", "--archive-dir", tmp_path / "cache", target,
                   tmp_path / "restored"], env, duplicity=debian)
    assert_same_tree(states[1][1], snapshot(tmp_path / "restored"), "Debian duplicity restore")
    # duply 2.4 on the same duplicity
    src = tmp_path / "duply-src"
    subprocess.run(["cp", "-a", os.fsdecode(states[0][0]), src], check=True)
    profile = tmp_path / "profile"
    _duply_conf(profile, src, tmp_path / "duply-target", encrypted=True)
    out = _duply(profile, "full", env=env)
    assert " active on duplicity 0.8.22" in out, out
    _duply(profile, "restore", str(tmp_path / "duply-restored"), env=env)
    assert_same_tree(snapshot(src), snapshot(tmp_path / "duply-restored"), "duply restore")
    # removed: stock again, and stock restores both archives
    _run(["apt-get", "remove", "-y", "-qq", DEB_NAME],
         env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import dupcore"], capture_output=True,
                          env=env, check=False)
    assert proc.returncode != 0
    assert not glob.glob("/usr/lib/python3/dist-packages/dupcore*")
    res = run_duplicity(["restore", "-v", "info", "--archive-dir", tmp_path / "cache2", target,
                         tmp_path / "restored2"], env, duplicity=debian)
    assert_active(res, "stock")
    assert_same_tree(states[1][1], snapshot(tmp_path / "restored2"), "stock after removal")
    out = _duply(profile, "restore", str(tmp_path / "duply-restored2"), env=env)
    assert "dupcore" not in out, out
    assert_same_tree(snapshot(src), snapshot(tmp_path / "duply-restored2"), "duply, stock")


# ------------------------------------------------------------------------------ pipx


def test_pipx_inject(dist, tmp_path, states, gnupghome):
    """`pipx install duplicity` then `pipx inject duplicity <wheel>`: pipx's duplicity runs on
    dupcore, and stock duplicity restores what it made."""
    tools = tmp_path / "pipx-tool"
    _run([sys.executable, "-m", "venv", tools])
    _run([tools / "bin" / "pip", "install", "-q", "pipx"])
    pipx_env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx-home"),
                    PIPX_BIN_DIR=str(tmp_path / "pipx-bin"),
                    PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
                    PIPX_DEFAULT_PYTHON=sys.executable)
    pipx = tools / "bin" / "pipx"
    _run([pipx, "install", f"duplicity=={DUPLICITY_VERSION}"], env=pipx_env)
    _run([pipx, "inject", "duplicity", dist["x86_64"]], env=pipx_env)
    duplicity = tmp_path / "pipx-bin" / "duplicity"
    venv_python = tmp_path / "pipx-home" / "venvs" / "duplicity" / "bin" / "python"
    env = _env(gnupghome)
    _assert_all_active(_status([venv_python], env), f"3.2.x ({DUPLICITY_VERSION})")
    target = f"file://{tmp_path / 'arch'}"
    res = run_duplicity(["full", "-v", "info", "--archive-dir", tmp_path / "cache",
                         states[0][0], target], env, duplicity=duplicity)
    assert_active(res, "dupcore")
    run_duplicity(["restore", "--archive-dir", tmp_path / "cache2", target,
                   tmp_path / "restored"], _env(gnupghome, "stock"))
    assert_same_tree(states[1][0], snapshot(tmp_path / "restored"), "restore of pipx's backup")
