"""The restore engine against stock duplicity on a long chain.

A full backup and 30 incrementals of a tree whose big files change in scattered pages, grow and
shrink, with renames, deletions, file/directory/symlink/fifo changes, permission-only changes and
multi-volume files, are restored at every point with dupcore's engine and with stock duplicity:
the trees must be identical (types, contents, modes, owners, mtimes, link targets) and equal to
the source at that point. A symmetric chain is checked at a few points. Logs of the two must
list the same files in the same order.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from pathlib import Path

import pytest
from helpers import PASSPHRASE, assert_same_tree, clean_env, run_duplicity, snapshot

pytestmark = pytest.mark.e2e

STEPS = 30
T0 = 1_700_000_000
PAGE = 4096


def _write(path, data, mtime):
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


def _remove(path):
    if os.path.islink(path) or not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
    else:
        shutil.rmtree(path)


def build(root, rng):
    """Step 0: big multi-volume files, small files, a morphing path, a directory to drop."""
    os.makedirs(os.path.join(root, "big"))
    os.makedirs(os.path.join(root, "small", "deep", "er"))
    _write(os.path.join(root, "big", "pages.db"), rng.randbytes(2_600_000), T0)
    text = b"".join(b"row %d value %d\n" % (i, rng.randrange(10**6)) for i in range(90_000))
    _write(os.path.join(root, "big", "text.log"), text, T0)
    for i in range(40):
        d = os.path.join(root, "small", "deep", "er") if i % 5 == 0 else os.path.join(root, "small")
        _write(os.path.join(d, f"f{i:02d}"), rng.randbytes(rng.randrange(0, 9000)), T0)
    _write(os.path.join(root, "morph"), b"a file first", T0)
    os.makedirs(os.path.join(root, "gone"))
    _write(os.path.join(root, "gone", "x"), b"x", T0)
    os.symlink("small/f01", os.path.join(root, "link"))
    _settle(root, T0)


def _settle(root, mtime):
    for d, dirs, _files in os.walk(root):
        for name in dirs:
            p = os.path.join(d, name)
            if not os.path.islink(p):
                os.utime(p, (mtime, mtime))
    os.utime(root, (mtime, mtime))


def mutate(root, rng, step):
    """One step of changes, all dated ``T0 + step * 1000``."""
    t = T0 + step * 1000
    db = os.path.join(root, "big", "pages.db")
    with open(db, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        for _ in range(3):
            f.seek(rng.randrange(0, max(1, size // PAGE)) * PAGE)
            f.write(rng.randbytes(PAGE))
        if step % 7 == 0:
            f.seek(0, os.SEEK_END)
            f.write(rng.randbytes(100_000))
        if step % 11 == 0:
            f.truncate(size - 50_000)
    os.utime(db, (t, t))
    log = os.path.join(root, "big", "text.log")
    with open(log, "r+b") as f:
        f.seek(rng.randrange(0, 1_000_000))
        f.write(b"EDIT %d" % step)
    os.utime(log, (t, t))
    small = os.path.join(root, "small")
    names = sorted(n for n in os.listdir(small) if n.startswith("f"))
    for name in rng.sample(names, 3):
        _write(os.path.join(small, name), rng.randbytes(rng.randrange(0, 9000)), t)
    victim = rng.choice(names)
    os.rename(os.path.join(small, victim), os.path.join(small, f"f{victim[1:]}-r{step}"))
    os.utime(os.path.join(small, f"f{victim[1:]}-r{step}"), (t, t))
    _remove(os.path.join(small, rng.choice(sorted(set(names) - {victim}))))
    _write(os.path.join(small, f"new{step:02d}"), b"new %d" % step, t)
    mode_only = os.path.join(small, min(n for n in os.listdir(small) if n.startswith("f")))
    os.chmod(mode_only, rng.choice([0o600, 0o640, 0o644, 0o755]))
    morph = os.path.join(root, "morph")
    _remove(morph)
    kind = step % 4
    if kind == 0:
        _write(morph, b"file again %d" % step, t)
    elif kind == 1:
        os.mkdir(morph)
        _write(os.path.join(morph, "inside"), b"inside %d" % step, t)
    elif kind == 2:
        os.symlink(f"target-{step}", morph)
    else:
        os.mkfifo(morph)
        os.utime(morph, (t, t))
    gone = os.path.join(root, "gone")
    if step % 5 == 0:
        _remove(gone)
    elif step % 5 == 2:
        os.makedirs(gone, exist_ok=True)
        _write(os.path.join(gone, f"y{step}"), b"y", t)
    _settle(root, t)


@pytest.fixture(scope="module")
def long_chain(tmp_path_factory):
    """The chain (plain and symmetric) and the source snapshot at every point."""
    base = tmp_path_factory.mktemp("long-chain")
    src = os.path.join(base, "src")
    rng = random.Random(31)
    build(src, rng)
    snaps = []
    targets = {v: f"file://{base}/target-{v}" for v in ("plain", "sym")}
    env = clean_env(mode="dupcore", PASSPHRASE=PASSPHRASE)
    for step in range(STEPS + 1):
        if step:
            mutate(src, rng, step)
        snaps.append(snapshot(src))
        now = str(T0 + step * 1000 + 500)
        for variant, url in targets.items():
            enc = ["--no-encryption"] if variant == "plain" else []
            run_duplicity(["full" if step == 0 else "incr", *enc, "--volsize", "1",
                           "--current-time", now, "--archive-dir", f"{base}/arch-{variant}",
                           src, url], env)
    return base, targets, snaps


def _restore(base, url, variant, mode, step, tag, **settings):
    out = os.path.join(base, f"out-{tag}-{variant}-{mode}-{step}")
    env = clean_env(mode=mode, PASSPHRASE=PASSPHRASE, **settings)
    enc = ["--no-encryption"] if variant == "plain" else []
    res = run_duplicity(["restore", *enc, "--time", str(T0 + step * 1000 + 600),
                         "--archive-dir", f"{base}/arch-{variant}-{mode}", "-v", "info",
                         url, out], env)
    return out, res


def _engine_ran(res):
    banner = res.banner() or ""
    return "restore [restore, verify (Rust engine" in banner and b"dupcore restore: stock" not in res.output


def _written(res):
    return [line for line in res.output.splitlines() if line.startswith(b"Writing ")]


@pytest.mark.parametrize("step", range(STEPS + 1))
def test_every_point_restores_as_stock(long_chain, step):
    base, targets, snaps = long_chain
    got = {}
    for mode in ("dupcore", "stock"):
        out, res = _restore(base, targets["plain"], "plain", mode, step, "all")
        assert _engine_ran(res) == (mode == "dupcore"), res.text()[-2000:]
        got[mode] = (snapshot(out), _written(res))
        shutil.rmtree(out)
    assert_same_tree(got["stock"][0], got["dupcore"][0], f"point {step}: dupcore vs stock")
    expected = dict(snaps[step])
    assert_same_tree(expected, got["dupcore"][0], f"point {step}: dupcore vs source")
    assert got["dupcore"][1] == got["stock"][1]


@pytest.mark.parametrize("step", [0, 13, STEPS])
def test_symmetric_chain_restores_as_stock(long_chain, step):
    base, targets, snaps = long_chain
    trees = {}
    for mode in ("dupcore", "stock"):
        out, res = _restore(base, targets["sym"], "sym", mode, step, "sym")
        assert _engine_ran(res) == (mode == "dupcore"), res.text()[-2000:]
        trees[mode] = snapshot(out)
        shutil.rmtree(out)
    assert_same_tree(trees["stock"], trees["dupcore"], f"symmetric point {step}")
    assert_same_tree(snaps[step], trees["dupcore"], f"symmetric point {step} vs source")


@pytest.mark.parametrize("variant", ["plain", "sym"])
@pytest.mark.parametrize("spill_mib,ahead", [(0, 2), (1, 3), (2048, 6)])
def test_volumes_decoded_ahead_with_and_without_spool(long_chain, variant, spill_mib, ahead):
    """The latest point restored with the volumes fetched ahead decoded only in memory
    (spool 0), with a spool budget used up at once (1 MiB), and with a large one and many
    volumes ahead: always the source's tree."""
    base, targets, snaps = long_chain
    out, res = _restore(base, targets[variant], variant, "dupcore", STEPS,
                        f"spill{spill_mib}-{ahead}", DUPCORE_RESTORE_SPILL_MIB=spill_mib,
                        DUPCORE_RESTORE_AHEAD=ahead)
    assert _engine_ran(res), res.text()[-2000:]
    assert_same_tree(snaps[STEPS], snapshot(out), f"{variant}, spool {spill_mib} MiB")
    shutil.rmtree(out)


def _dense(root):
    """Regular files under ``root`` with fewer blocks than their size needs (sparse)."""
    sparse = []
    for d, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(d, name))
            if stat.S_ISREG(st.st_mode) and st.st_blocks * 512 < st.st_size:
                sparse.append(os.path.join(d, name))
    return sparse


@pytest.mark.parametrize("step", [1, 13, STEPS])
def test_snapshots_spooled_to_disk_become_the_restored_files(long_chain, step):
    """With no snapshot kept in memory (``DUPCORE_RESTORE_SPOOL_MEMORY_MIB=0``), every file
    with deltas is finished in its spool file on the target's file system and linked there:
    the tree is the source's at that point, every file dense, and verify --compare-data of
    the source's copy finds no difference."""
    base, targets, snaps = long_chain
    out, res = _restore(base, targets["plain"], "plain", "dupcore", step, "spool0",
                        DUPCORE_RESTORE_SPOOL_MEMORY_MIB=0)
    assert _engine_ran(res), res.text()[-2000:]
    assert_same_tree(snaps[step], snapshot(out), f"point {step}, snapshots spooled")
    assert _dense(out) == []
    env = clean_env(mode="dupcore", PASSPHRASE=PASSPHRASE, DUPCORE_RESTORE_SPOOL_MEMORY_MIB="0")
    res = run_duplicity(["verify", "--no-encryption", "--compare-data", "--time",
                         str(T0 + step * 1000 + 600), "--archive-dir", f"{base}/arch-v-spool0",
                         targets["plain"], out], env, check=False)
    assert res.returncode == 0, res.text()[-2000:]
    assert b", 0 difference(s) found." in res.output
    shutil.rmtree(out)


@pytest.mark.parametrize("direct", ["0", "1"])
def test_large_files_with_and_without_direct_io(long_chain, direct):
    """The latest point restored with large files and spooled snapshots written past the page
    cache (the default) and through it (``DUPCORE_RESTORE_DIRECT=0``): the source's tree,
    every file dense."""
    base, targets, snaps = long_chain
    out, res = _restore(base, targets["plain"], "plain", "dupcore", STEPS, f"direct{direct}",
                        DUPCORE_RESTORE_DIRECT=direct, DUPCORE_RESTORE_SPOOL_MEMORY_MIB=0)
    assert _engine_ran(res), res.text()[-2000:]
    assert_same_tree(snaps[STEPS], snapshot(out), f"direct I/O {direct}")
    assert _dense(out) == []
    shutil.rmtree(out)


@pytest.mark.parametrize("spool", ["0", "16"])
def test_single_file_with_deltas_restores_as_stock(long_chain, spool):
    """--path-to-restore of one file with 30 deltas, its snapshot spooled to disk or kept in
    memory: the target is that file (not linked into a directory), as stock writes it."""
    base, targets, _snaps = long_chain
    got = {}
    for mode in ("dupcore", "stock"):
        out = os.path.join(base, f"single-{mode}-{spool}")
        env = clean_env(mode=mode, PASSPHRASE=PASSPHRASE, DUPCORE_RESTORE_SPOOL_MEMORY_MIB=spool)
        run_duplicity(["restore", "--no-encryption", "--path-to-restore", "big/pages.db",
                       "--archive-dir", f"{base}/arch-s-{mode}", targets["plain"], out], env)
        got[mode] = snapshot(out)
        os.unlink(out)
    assert_same_tree(got["stock"], got["dupcore"], f"one file, spool {spool} MiB")


@pytest.mark.parametrize("path", ["big/pages.db", "small", "small/deep", "morph"])
def test_path_to_restore_as_stock(long_chain, path):
    base, targets, _snaps = long_chain
    trees = {}
    for mode in ("dupcore", "stock"):
        out = os.path.join(base, f"part-{mode}-{path.replace('/', '_')}")
        env = clean_env(mode=mode, PASSPHRASE=PASSPHRASE)
        run_duplicity(["restore", "--no-encryption", "--path-to-restore", path, "--time",
                       str(T0 + 21 * 1000 + 600), "--archive-dir", f"{base}/arch-p-{mode}",
                       targets["plain"], out], env)
        trees[mode] = snapshot(out)
        shutil.rmtree(out) if os.path.isdir(out) and not os.path.islink(out) else os.unlink(out)
    assert_same_tree(trees["stock"], trees["dupcore"], f"--path-to-restore {path}")


def _verify(base, url, mode, local, *extra, verbosity="info",
            kept=(b"Difference found", b"Verify complete")):
    env = clean_env(mode=mode, PASSPHRASE=PASSPHRASE)
    res = run_duplicity(["verify", "--no-encryption", *extra, "--archive-dir",
                         f"{base}/arch-v-{mode}", "-v", verbosity, url, local], env, check=False)
    lines = [line for line in res.output.splitlines() if line.startswith(kept)]
    return res, lines


def _changed_copy(base, local):
    """A copy of the chain's source with a data-only, an mtime, a permission and a type
    change, a missing and a new file."""
    shutil.copytree(os.path.join(base, "src"), local, symlinks=True)
    db = local / "big" / "pages.db"
    st = db.stat()
    with open(db, "r+b") as f:  # same size and mtime, one byte changed deep in the file
        f.seek(2_000_001)
        byte = f.read(1)
        f.seek(2_000_001)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(db, (st.st_atime, st.st_mtime))
    small = sorted(p for p in (local / "small").iterdir() if p.is_file())
    os.utime(small[0], (1, 1))
    small[1].chmod(0o604)
    small[2].unlink()
    (local / "small" / "extra").write_bytes(b"not in the backup")
    (local / "link").unlink()
    (local / "link").write_bytes(b"a file where a symlink was")
    return small


@pytest.mark.parametrize("walk", ["engine", "select"])
@pytest.mark.parametrize("compare_data", [True, False])
def test_verify_reports_as_stock(long_chain, tmp_path, compare_data, walk):
    r"""verify (with and without --compare-data) of the latest point against a copy of the
    source with data-only, mtime, permission, type changes, a missing and a new file: the same
    differences, counts and exit code as stock; with the local tree walked by the engine, and
    by duplicity's `Select` (a regular expression with `\d`, which the engine leaves to it)."""
    base, targets, _snaps = long_chain
    local = tmp_path / "local"
    _changed_copy(base, local)
    extra = ["--compare-data"] if compare_data else []
    if walk == "select":
        extra += ["--exclude-regexp", r"/small/no-such-file\d$"]
    got = {}
    for mode in ("dupcore", "stock"):
        res, lines = _verify(base, targets["plain"], mode, local, *extra, verbosity="debug",
                             kept=(b"Difference found", b"Verify complete"))
        if mode == "dupcore":
            assert "verify" in (res.banner() or ""), res.text()[-2000:]
            assert b"dupcore verify: stock" not in res.output
            walked = b"dupcore verify: the engine walks and compares the local tree"
            assert (walked in res.output) == (walk == "engine")
        got[mode] = (res.returncode, lines)
    assert got["dupcore"] == got["stock"]
    assert got["stock"][0] == (1 if compare_data else 0)
    if compare_data:
        assert any(b"Data for file big/pages.db is different" in x for x in got["stock"][1])


@pytest.mark.parametrize("compare_data", [True, False])
def test_verify_walking_the_local_tree_logs_as_stock(long_chain, tmp_path, compare_data):
    """verify where the engine walks, selects and compares the local tree itself (selection
    rules it takes): at debug level the selection's lines, the differences, the counts and the
    exit code are stock's, in stock's order."""
    base, targets, _snaps = long_chain
    local = tmp_path / "local"
    small = _changed_copy(base, local)
    (local / "small" / "excluded-new").write_bytes(b"excluded")
    rules = ["--exclude", str(local / "small" / "excluded-*"),
             "--exclude-regexp", f"{small[1].name}$",
             "--include", str(local / "small"), "--include", str(local / "big"),
             "--exclude", "**"]
    extra = ["--compare-data"] if compare_data else []
    kept = (b"Difference found", b"Verify complete", b"Selection", b"Selecting")
    got = {}
    for mode in ("dupcore", "stock"):
        res, lines = _verify(base, targets["plain"], mode, local, *rules, *extra,
                             verbosity="debug", kept=kept)
        if mode == "dupcore":
            assert b"dupcore verify: the engine walks and compares the local tree" in res.output
        got[mode] = (res.returncode, lines)
    assert got["dupcore"] == got["stock"]
    assert got["stock"][0] == (1 if compare_data else 0)
    differences = [x for x in got["stock"][1] if x.startswith(b"Difference found")]
    if compare_data:
        assert any(b"Data for file big/pages.db is different" in x for x in differences)
        # excluded by the regular expression: missing locally, not a permission change
        name = small[1].name.encode()
        assert [x for x in differences if name in x] == [
            b"Difference found: File small/" + name + b" is missing"], differences
        assert any(b"excluded-new" in x for x in got["stock"][1])  # judged by the selection
    else:
        assert not differences


def test_restore_warnings_spelled_as_each_release_line():
    """Three of the engine's warnings start with "WARNING" on 3.x and "Warning" on 2.2.x and
    2.1.x, as each line's own sources write them."""
    from dupcore import backup, restore
    from duplicity import util
    from test_e2e_versions import pypi_venv

    class Log:
        def __init__(self):
            self.warned = []

        def Warn(self, msg, *_args):
            self.warned.append(msg)

    events = [("negative_mtime", b"f"), ("old_index", (b"b",), (b"a",))]
    saved = restore._warning
    try:
        for line, version, word in (("3.2.x", None, "WARNING"), ("2.2.x", "2.2.4", "Warning"),
                                    ("2.1.x", "2.1.5", "Warning")):
            restore._warning = backup.warning_word(line)
            log = Log()
            restore._log_events(events, log, util)
            assert log.warned == [f"{word}: f has negative mtime, treating as 0.",
                                  f"{word}: oldindex b >= newindex a"], line
            if version is None:
                site = os.path.dirname(util.__file__)
            else:
                site = next((pypi_venv(version) / "lib").glob("python3*/site-packages/duplicity"))
            sources = "".join(Path(site, f).read_text(encoding="utf-8")
                              for f in ("path.py", "lazy.py", "util.py"))
            for text in restore._WORDING[word]:
                assert f'"{text}"' in sources, (version, text)
    finally:
        restore._warning = saved


def test_decoded_volume_spill_by_default_only_into_a_tmpfs(monkeypatch):
    """The read-ahead spill's default budget: on where duplicity's temporary directory is a
    tmpfs, off on a disk file system; the variable wins either way."""
    from dupcore import _env, restore

    monkeypatch.delenv("DUPCORE_RESTORE_SPILL_MIB", raising=False)
    assert _env.restore_spill_mib(100_000, 16_000, True) == 2000
    assert _env.restore_spill_mib(4_000, 64_000, True) == 1000
    assert _env.restore_spill_mib(100_000, 16_000, False) == 0
    monkeypatch.setenv("DUPCORE_RESTORE_SPILL_MIB", "64")
    assert _env.restore_spill_mib(100_000, 16_000, False) == 64
    assert restore._file_system_type("/proc/self") == "proc"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        tmpfs = [line.split()[1] for line in mounts if line.split()[2:3] == ["tmpfs"]]
    if tmpfs:
        assert restore._file_system_type(os.path.join(tmpfs[0], "below")) == "tmpfs"


class _Set:
    """The parts of a backup set and its manifest that the volume fetcher reads."""

    def __init__(self, name, volumes):
        self.volume_name_dict = {n: f"{name}.vol{n}" for n in range(1, volumes + 1)}
        self.volume_info_dict = {n: None for n in self.volume_name_dict}
        self.backend = None

    def __len__(self):
        return len(self.volume_name_dict)

    def get_containing_volumes(self, _index):
        return list(self.volume_name_dict)


class _Log:
    DEBUG = 9

    def getverbosity(self):
        return self.DEBUG  # volumes go through restore_get_enc_fileobj

    def Progress(self, *_args):
        pass


def test_first_volumes_of_every_set_are_fetched_before_next_volumes():
    """The engine reads each backup set's first entry before it writes anything: with two
    workers, every set's first volume is fetched before set 0's second, so that the workers
    hash the incrementals' first volumes two at a time (not one, the other slot held by a
    volume needed seconds later)."""
    from dupcore import restore

    class Volume(str):
        def close(self):
            return None

    class DupMain:
        def restore_get_enc_fileobj(self, _backend, name, _info):
            return Volume(name)

    sets = [_Set("full", 3)] + [_Set(f"inc{i}", 1) for i in range(1, 5)]
    volumes = restore._Volumes(DupMain(), _Log(), [(s, s) for s in sets], (), 2)
    submitted = []
    submit = volumes.pool.submit

    def recording(fn, backup_set, manifest, vol_num):
        submitted.append(backup_set.volume_name_dict[vol_num])
        return submit(fn, backup_set, manifest, vol_num)

    volumes.pool.submit = recording
    try:
        volumes._top_up()
        got = [volumes.next(s) for s in range(len(sets))]
        got += [volumes.next(0), volumes.next(0), volumes.next(0)]
        got += [volumes.next(s) for s in range(1, len(sets))]
    finally:
        volumes.close()
    assert got == ["full.vol1", "inc1.vol1", "inc2.vol1", "inc3.vol1", "inc4.vol1",
                   "full.vol2", "full.vol3", None, None, None, None, None]
    assert submitted[:5] == ["full.vol1", "inc1.vol1", "inc2.vol1", "inc3.vol1", "inc4.vol1"]
    assert submitted[5:] == ["full.vol2", "full.vol3"]
