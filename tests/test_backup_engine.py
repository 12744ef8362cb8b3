r"""The backup scan: stock duplicity and duplicity on dupcore back up the same tree through a full
backup and 10 incrementals; every step changes the tree in another way (permissions only,
owner only, mtime only, type changes file/directory/symlink, retargeted links, renames,
deletions of whole directories, non-UTF-8 names, fifos, devices, sockets, negative and zero
mtimes, growing and shrinking files, nothing at all).

Both with the engine's own walk (no selection options, and with ``--include``/``--exclude``
globs that make directories scanned, ``--exclude-if-present``, ``--exclude-regexp``, a
filelist) and with duplicity's selection feeding the engine (a regular expression with
``\d``). After each step both chains must hold the same tar members and byte-identical signature tars,
manifests equal but for volume hashes, the same statistics, and the same per-path records in
the machine-readable log at ``-v9`` (selection, ``Selecting``, ``Comparing``, ``Getting
delta``, ``A``/``M``/``D``, warnings), in the same order. Stock then restores dupcore's chain at
its last point exactly.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import socket
import time

import pytest
from helpers import assert_same_tree, clean_env, run_duplicity, snapshot
from test_e2e import archive_contents
from trees import change_odd_entries, odd_entries_tree

pytestmark = pytest.mark.e2e

MODES = ("stock", "dupcore")
STAT_KEYS = ("SourceFiles", "SourceFileSize", "NewFiles", "NewFileSize", "DeletedFiles",
             "ChangedFiles", "ChangedFileSize", "ChangedDeltaSize", "DeltaEntries",
             "RawDeltaSize", "Errors")
# per-path log records, by the start of their text
PER_PATH = ("Selection:", "Selecting ", "Comparing ", "Getting delta of ", "A ", "M ", "D ",
            "Skipping socket", "Error ", "WARNING", "Warning")


def _write(path, data, mtime=None):
    with open(path, "wb") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def step_perms_owner_mtime(root):
    os.chmod(root / "café", 0o600)
    os.chown(root / "empty", 4321, 4322)
    os.utime(root / "exact64k", (1_700_000_123, 1_700_000_123))


def step_type_changes(root):
    os.unlink(root / "café")
    os.mkdir(root / "café")
    _write(root / "café" / "inside", b"now a directory")
    shutil.rmtree(root / "d")
    os.symlink("exact64k", root / "d")
    os.unlink(root / "unicode-link")
    _write(root / "unicode-link", b"was a link")


def step_links_and_renames(root):
    os.unlink(root / "d")
    os.symlink("elsewhere", root / "d")
    os.rename(root / "exact64k", root / "renamed64k")
    os.rename(root / "café", root / "cafe-renamed")


def step_special_files(root):
    os.mkfifo(root / "fifo2")
    try:
        os.mknod(root / "zero-dev", 0o640 | 0o020000, os.makedev(1, 5))
    except OSError:
        pass
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fsdecode(bytes(root / "a.sock")))
    sock.close()


def step_odd_times(root):
    _write(root / "negative-mtime", b"before 1970", -5)
    _write(root / "zero-mtime", b"at the epoch", 0)
    os.utime(root / "empty", (0, 0))


def step_grow_shrink(root):
    name = root / ("multi" * 30)
    with open(name, "ab") as f:
        f.write(os.urandom(200_000))
    with open(root / "renamed64k", "r+b") as f:
        f.truncate(1000)


def step_many_new(root):
    deep = root / "deep" / "er" / "est"
    deep.mkdir(parents=True)
    for i in range(300):
        _write(deep / f"f{i:03d}", b"small %d" % i)
    os.mkdir(root / "empty-dir")
    os.mkdir(root / "skipped-dir")
    _write(root / "skipped-dir" / ".nobackup", b"")
    _write(root / "skipped-dir" / "data", b"left out when --exclude-if-present is given")


def step_non_utf8(root):
    raw = bytes(root) + b"/"
    os.mkdir(raw + b"caf\xe9-dir")
    _write(raw + b"caf\xe9-dir/\xff\xfe", b"latin-1")
    os.unlink(raw + ("unicodé ✓ " * 12).encode())


def step_delete_trees(root):
    shutil.rmtree(root / "deep")
    os.unlink(root / "negative-mtime")
    os.chmod(root / "zero-mtime", 0o000)


def step_nothing(root):
    pass


STEPS = [change_odd_entries, step_perms_owner_mtime, step_type_changes, step_links_and_renames,
         step_special_files, step_odd_times, step_grow_shrink, step_many_new, step_non_utf8,
         step_delete_trees, step_nothing]


def _records(log_file):
    """(header, text) of the per-path records of a duplicity ``--log-file``."""
    out = []
    with open(log_file, "rb") as f:
        blocks = f.read().decode("utf-8", "surrogateescape").split("\n\n")
    for block in blocks:
        lines = block.strip("\n").split("\n")
        if not lines or not lines[0]:
            continue
        text = "\n".join(line[2:] for line in lines[1:] if line.startswith(". "))
        if text.startswith(PER_PATH):
            out.append((lines[0], text))
    return out


def _stats(res):
    text = res.stdout.decode("utf-8", "replace")
    return {k: re.search(rf"^{k} (\S+)", text, re.MULTILINE).group(1) for k in STAT_KEYS}


def _manifests(target):
    """Manifest texts in order, volume hashes and host-specific lines left out."""
    out = []
    for name in sorted(os.listdir(target)):
        if name.endswith(".manifest"):
            with open(os.path.join(target, name), "rb") as f:
                lines = [ln for ln in f.read().split(b"\n") if not ln.strip().startswith(b"Hash ")]
            out.append(b"\n".join(lines))
    return out


SELECTIONS = {
    # the engine walks the tree, with no selection function
    "walk": [],
    # the engine walks the tree and evaluates duplicity's selection functions (options, a
    # regular expression, a case-insensitive glob and a filelist with +/- lines, a comment and
    # a quoted line)
    "selection": ["--include", "**/est/f00*", "--exclude-if-present", ".nobackup",
                  "--exclude-regexp", r"/(?:far-futur[e]{1,2}|no-such-name)$",
                  "--exclude", "ignorecase:**/*.SOCK", "--exclude-filelist", "FILELIST"],
    # a regular expression with Python-only syntax (\d): duplicity's own selection feeds the
    # engine
    "python-selection": ["--include", "**/est/f00*", "--exclude", "**/est",
                         "--exclude-if-present", ".nobackup", "--exclude-regexp", r"\.sock\d*$",
                         "--exclude", "**/renamed64k"],
}
WALKS = {"walk": True, "selection": True, "python-selection": False}
FILELIST = b"# what the backup leaves out\n+ **/est/f001\n**/est\n- **/*.sock\n\n'**/renamed64k'\n"


@pytest.fixture(scope="module", params=list(SELECTIONS))
def chains(tmp_path_factory, request):
    work = tmp_path_factory.mktemp(f"backup-engine-{request.param}")
    (work / "filelist").write_bytes(FILELIST)
    selection = [str(work / "filelist") if a == "FILELIST" else a
                 for a in SELECTIONS[request.param]]
    tree = work / "tree"
    odd_entries_tree(tree)
    result = {m: {"records": [], "stats": [], "banner": []} for m in MODES}
    last = 0
    for i, step in enumerate([None, *STEPS]):
        if step is not None:
            step(tree)
        for mode in MODES:
            while int(time.time()) <= last:  # backups are named by the second
                time.sleep(0.05)
            log_file = work / f"{mode}-{i}.log"
            res = run_duplicity(
                ["full" if i == 0 else "incremental", "--no-encryption", "-v9",
                 "--log-file", log_file, "--name", f"be-{mode}",
                 "--archive-dir", work / f"{mode}-cache", "--allow-source-mismatch",
                 *selection, tree, f"file://{work / mode}"],
                clean_env(mode=mode))
            last = int(time.time())
            result[mode]["records"].append(_records(log_file))
            result[mode]["stats"].append(_stats(res))
            result[mode]["banner"].append(b"dupcore backup: stock" in res.output)
            log_text = log_file.read_bytes()
            result[mode].setdefault("walks", []).append(
                b"dupcore backup: the engine walks the tree" in log_text)
    return work, tree, result, request.param


def test_scan_ran_in_every_dupcore_backup(chains):
    _, _, result, kind = chains
    assert result["dupcore"]["banner"] == [False] * (len(STEPS) + 1)
    assert result["dupcore"]["walks"] == [WALKS[kind]] * (len(STEPS) + 1)


def test_same_archive_contents(chains):
    work, _, _, _ = chains
    stock, dup = archive_contents(work / "stock"), archive_contents(work / "dupcore")
    assert sorted(stock) == sorted(dup)
    assert len([k for k in stock if k.startswith("inc")]) == len(STEPS)
    for k in stock:
        if "sig" in k:
            assert stock[k] == dup[k], f"{k}: signature tars differ"
        else:
            assert sorted(stock[k]) == sorted(dup[k]), f"{k}: different members"
            for name in stock[k]:
                assert stock[k][name] == dup[k][name], f"{k}: {name} differs"


def test_same_manifests(chains):
    work, _, _, _ = chains
    assert _manifests(work / "stock") == _manifests(work / "dupcore")


@pytest.mark.parametrize("step", range(len(STEPS) + 1))
def test_same_statistics_and_per_path_log(chains, step):
    _, _, result, _ = chains
    stock, dup = result["stock"], result["dupcore"]
    assert stock["stats"][step] == dup["stats"][step]
    assert len(stock["records"][step]) > 0
    assert stock["records"][step] == dup["records"][step]


def test_stock_restores_the_dupcore_chain(chains, tmp_path):
    """Stock restores both chains to the same tree; without selection, to the source tree."""
    work, tree, _, kind = chains
    for mode in MODES:
        out = tmp_path / mode
        run_duplicity(["restore", "--no-encryption", "--archive-dir", tmp_path / "cache",
                       f"file://{work / mode}", out], clean_env(mode="stock"))
        shutil.rmtree(tmp_path / "cache")
    restored = snapshot(tmp_path / "dupcore")
    assert_same_tree(snapshot(tmp_path / "stock"), restored, "stock and dupcore chains")
    if kind == "walk":
        expected = snapshot(tree)
        expected.pop(b"a.sock", None)  # sockets are not backed up
        assert_same_tree(expected, restored, "the source tree")
    else:
        assert b"skipped-dir" not in restored and b"renamed64k" not in restored
        members = {m for k, v in archive_contents(work / "dupcore").items() if "sig" not in k
                   for m in v}
        assert "snapshot/deep/er/est/f001" in members
        assert "snapshot/deep/er/est/f100" not in members


def _cli(opts):
    """duplicity command-line arguments for ``selection_cases`` options."""
    args = []
    for opt, arg in opts:
        args.append(opt)
        if opt == "--exclude-older-than":
            args.append("2017-07-14")  # the cases' trees have mtimes in 2001 and 2033
        elif arg is not None:
            args.append(arg)
    return args


def _volumes(target):
    """Each backup set's decompressed difftar (one volume each here) and signature tar."""
    out = {}
    for name in sorted(os.listdir(target)):
        if name.endswith(".gz"):
            key = re.sub(r"\.\d{8}T\d{6}Z", "", name)  # the times differ between the chains
            key = re.sub(r"\.to", "", key)
            assert key not in out, key
            with gzip.open(os.path.join(target, name)) as f:
                out[key] = f.read()
    return out


def _change(root, made, rng):
    """Changes for the incremental: data of some files, an mtime, a deletion, a new file."""
    files = [p for p in made if os.path.isfile(os.path.join(root, p))
             and not os.path.islink(os.path.join(root, p))]
    for p in rng.sample(files, min(3, len(files))):
        with open(os.path.join(root, p), "ab") as f:
            f.write(b"more")
        os.utime(os.path.join(root, p), (2e9 + 7,) * 2)
    if files:
        os.unlink(os.path.join(root, rng.choice(files)))
    with open(os.path.join(root, b"new.txt"), "wb") as f:
        f.write(b"new")


def test_random_trees_and_rules_give_stock_archives(tmp_path):
    """Random trees backed up with random selection options and ``--files-from`` lists
    (``selection_cases``): a full and an incremental by stock and by dupcore give
    byte-identical difftars (decompressed) and signature tars, the same manifests (volume
    hashes aside) and exit codes."""
    import random

    from selection_cases import _options, _tree, files_from

    rng = random.Random(20261207)
    walked = compared = listed = 0
    for case in range(14):
        root = os.fsencode(tmp_path / f"t{case}")
        os.mkdir(root)
        made = _tree(root, rng)
        opts, taken = _options(os.fsdecode(root), made, rng)
        args = _cli(opts)
        names = files_from(made, rng, chance=0.5)
        if names is not None:
            (tmp_path / f"list{case}").write_bytes(os.fsencode(names))
            args = ["--files-from", str(tmp_path / f"list{case}"), *args]
        codes = {}
        for step in ("full", "incremental"):
            if step == "incremental":
                _change(root, made, rng)
            for mode in MODES:
                res = run_duplicity(
                    [step, "--no-encryption", "-v", "debug", "--name", f"c{case}",
                     "--archive-dir", tmp_path / f"cache-{mode}", *args, root,
                     f"file://{tmp_path / f'{mode}-{case}'}"],
                    clean_env(mode=mode), check=False)
                codes.setdefault(mode, []).append(res.returncode)
                if mode == "dupcore" and res.returncode == 0:
                    walks = b"dupcore backup: the engine walks the tree" in res.output
                    assert walks == taken, (case, args)
            time.sleep(1.0)  # backups are named by the second
        assert codes["stock"] == codes["dupcore"], (case, args, codes)
        if codes["stock"] != [0, 0]:
            continue  # duplicity refuses these options (e.g. an include last)
        stock, dup = (_volumes(tmp_path / f"{m}-{case}") for m in MODES)
        assert sorted(stock) == sorted(dup), (case, args)
        for key in stock:
            assert stock[key] == dup[key], (case, args, key)
        assert _manifests(tmp_path / f"stock-{case}") == _manifests(tmp_path / f"dupcore-{case}")
        compared += 1
        walked += taken
        listed += names is not None
    assert compared >= 6 and walked >= 4 and listed >= 2, (compared, walked, listed)
