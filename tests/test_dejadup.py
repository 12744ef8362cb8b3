"""duplicity run the way Déjà Dup 44-48 runs it (``DuplicityJob.vala``): a whole file system
as the source with the user's folders included, caches excluded and ``--exclude=**``
last, ``--exclude-if-present`` for ``CACHEDIR.TAG`` and ``.deja-dup-ignore``, ``--verbosity=9``,
``--timeout=120``, ``--volsize=200``, its own archive and temporary directories, the log
records on a pipe (``--log-fd``), symmetric encryption with ``PASSPHRASE`` or none; then a
restore of everything and of one file with ``--no-restore-ownership --force --time``.

Déjà Dup's source is ``/``; here it is a directory standing for it (a ``home/user`` inside,
and other top-level directories the selection leaves out), so that nothing else on the machine
changes the tree between the runs. Stock and dupcore run the same sequence (a full backup, a change, an incremental, the two
restores); their ``--log-fd`` record streams must hold the same records (level, code and
path, in the same order) apart from times, sizes and temporary names, and the restored trees
must be equal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest
from helpers import DUPLICITY, PASSPHRASE, assert_same_tree, clean_env, snapshot

pytestmark = pytest.mark.e2e

MODES = ("stock", "dupcore")
DIRS = {"stock": "run-a", "dupcore": "run-b"}  # where each mode writes (not named after it)
# records compared: per-path lines of the backup and the restore, warnings and errors
KEEP = re.compile(r"^(?:Selection:|Selecting |Comparing |Getting delta of |[AMD] |Writing |"
                  r"Skipping socket|Error |WARNING|Deleting |Making directory )")


def _home(root):
    """A small home directory with Déjà Dup's usual exclusions in it."""
    home = root / "home" / "user"
    for d in ("Documents/work", "Pictures", ".cache/thumbnails", "Downloads", "Music/cached",
              "projects/build"):
        (home / d).mkdir(parents=True)
    (home / "Documents" / "report.txt").write_bytes(b"quarterly numbers\n" * 200)
    (home / "Documents" / "work" / "plan.md").write_bytes(b"# plan\n" * 50)
    (home / "Pictures" / "cat.jpg").write_bytes(os.urandom(300_000))
    (home / ".cache" / "thumbnails" / "t.png").write_bytes(b"thumb")
    (home / "Downloads" / "big.iso").write_bytes(b"iso" * 1000)
    (home / "Music" / "cached" / "CACHEDIR.TAG").write_bytes(b"Signature: 8a477f597d28d172789f06886806bc55")
    (home / "Music" / "cached" / "song.ogg").write_bytes(b"cached song")
    (home / "projects" / "build" / ".deja-dup-ignore").write_bytes(b"")
    (home / "projects" / "build" / "out.o").write_bytes(b"object")
    (home / "projects" / "main.c").write_bytes(b"int main(void) { return 0; }\n")
    (home / ".bashrc").write_bytes(b"export PS1='$ '\n")
    return home


def _dup(args, env, log_path):
    """duplicity with ``--log-fd`` on a pipe, as Déjà Dup reads it; the records as text."""
    read_fd, write_fd = os.pipe()
    cmd = [str(DUPLICITY), *[str(a) for a in args], f"--log-fd={write_fd}"]
    with open(log_path.with_suffix(".out"), "wb") as out:
        proc = subprocess.Popen(cmd, env=env, pass_fds=(write_fd,), stdout=out,
                                stderr=subprocess.STDOUT)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        records = pipe.read()
    proc.wait(timeout=600)
    log_path.write_bytes(records)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n" + \
        log_path.with_suffix(".out").read_bytes().decode("utf-8", "replace")[-4000:]
    return records


def _records(raw, tmp, mode):
    """(header, text) of the compared records, with the test's directory names made neutral."""
    out = []
    for block in raw.decode("utf-8", "surrogateescape").split("\n\n"):
        lines = block.strip("\n").split("\n")
        if not lines or not lines[0]:
            continue
        text = "\n".join(line[2:] for line in lines[1:] if line.startswith(". "))
        if KEEP.match(text) and not text.startswith("dupcore "):
            neutral = [re.sub(r"\d{8}T\d{6}Z", "TIME",
                              t.replace(f"{tmp}/{DIRS[mode]}/", "TMP/MODE/").replace(tmp, "TMP"))
                       for t in (lines[0], text)]
            neutral = [re.sub(r"(duplicity|mktemp)-[\w]+-", r"\1-X-", t) for t in neutral]
            out.append(tuple(neutral))
    return out


@pytest.fixture(scope="module", params=["plain", "sym"])
def runs(tmp_path_factory, gnupghome, request):
    # the tree and everything the runs write are apart
    system = tmp_path_factory.mktemp(f"dejadup-root-{request.param}")
    for top in ("etc", "var/log", "usr/share/doc"):
        (system / top).mkdir(parents=True)
        (system / top / "file").write_bytes(b"system file")
    home = _home(system)
    tmp = tmp_path_factory.mktemp(f"dejadup-work-{request.param}")
    for mode in MODES:
        (tmp / DIRS[mode]).mkdir()
    (tmp / "tmpdir").mkdir()
    enc = ["--no-encryption"] if request.param == "plain" else []
    result = {}
    times = []
    for step in ("full", "incremental"):
        if step == "incremental":
            (home / "Documents" / "report.txt").write_bytes(b"quarterly numbers, revised\n" * 200)
            (home / "Pictures" / "dog.jpg").write_bytes(os.urandom(50_000))
            shutil.rmtree(home / "Documents" / "work")
        for mode in MODES:
            while times and int(time.time()) <= times[-1]:
                time.sleep(0.05)
            cache = tmp / DIRS[mode] / "cache"
            env = clean_env(gnupghome, mode=mode, PASSPHRASE=PASSPHRASE)
            args = [step, "--verbosity=9", "--timeout=120", f"--archive-dir={cache}",
                    f"--tempdir={tmp / 'tmpdir'}", "--volsize=200", *enc,
                    "--exclude-if-present=CACHEDIR.TAG", "--exclude-if-present=.deja-dup-ignore",
                    f"--exclude={home}/.cache", f"--exclude={home}/Downloads",
                    f"--include={home}", "--exclude=**", system,
                    f"file://{tmp / DIRS[mode] / 'target'}"]
            raw = _dup(args, env, tmp / f"{mode}-{step}.log")
            result[mode, step] = _records(raw, str(tmp), mode)
            assert home.exists()
            times.append(int(time.time()))
    when = str(times[-1] + 1)
    for mode in MODES:
        env = clean_env(gnupghome, mode=mode, PASSPHRASE=PASSPHRASE)
        cache = tmp / DIRS[mode] / "cache"
        for what, extra in (("all", []),
                            ("one", ["--path-to-restore=home/user/Pictures/cat.jpg"])):
            out = tmp / DIRS[mode] / f"restore-{what}"
            out.mkdir(parents=True)
            raw = _dup(["restore", "--verbosity=9", "--timeout=120", f"--archive-dir={cache}",
                        f"--tempdir={tmp / 'tmpdir'}", *enc, "--no-restore-ownership", "--force",
                        f"--time={when}", *extra, f"file://{tmp / DIRS[mode] / 'target'}", out],
                       env, tmp / f"{mode}-restore-{what}.log")
            result[mode, f"restore-{what}"] = _records(raw, str(tmp), mode)
            result[mode, f"tree-{what}"] = snapshot(out)
    return result, system


@pytest.mark.parametrize("step", ["full", "incremental", "restore-all", "restore-one"])
def test_same_log_records(runs, step):
    result, _ = runs
    stock, dup = result["stock", step], result["dupcore", step]
    assert stock, f"{step}: no records kept"
    assert stock == dup


def test_same_restored_trees_and_the_selection_held(runs):
    result, _system = runs
    rel = b"home/user"
    for what in ("all", "one"):
        assert_same_tree(result["stock", f"tree-{what}"], result["dupcore", f"tree-{what}"], what)
    everything = result["dupcore", "tree-all"]
    assert not any(k.startswith((b"etc", b"var", b"usr")) for k in everything)
    assert rel + b"/Documents/report.txt" in everything
    assert rel + b"/projects/main.c" in everything
    for gone in (b"/.cache", b"/Downloads", b"/Music/cached", b"/projects/build",
                 b"/Documents/work"):
        assert rel + gone not in everything, gone
