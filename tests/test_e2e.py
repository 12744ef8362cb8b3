"""End-to-end: the installed duplicity CLI, stock (DUPCORE=0) and on dupcore, on the same trees.

For each of ``--no-encryption`` and symmetric gpg, a chain full -> incremental -> incremental
(``--volsize 1``) is made by stock duplicity and by duplicity on dupcore. Both must restore every
time point and single paths exactly, verify cleanly, list and report the same, write the same
archive contents (decompressed volumes and signatures), and restore each other's archives.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tarfile
import time

import pytest
from helpers import (
    DUPLICITY,
    PASSPHRASE,
    assert_active,
    assert_same_tree,
    clean_env,
    entry,
    run_duplicity,
    snapshot,
)
from trees import NON_UTF8

pytestmark = pytest.mark.e2e

MODES = ("stock", "dupcore")
VARIANTS = {"plain": ["--no-encryption"], "sym": []}
NAME_TIME = re.compile(rb"^duplicity-(?:full|inc|new)[.-].*?(\d{8}T\d{6}Z)\.(?:manifest|sigtar)")


def _wait_next_second(last):
    """duplicity names backups by the second: never start two in the same one."""
    while int(time.time()) <= last:
        time.sleep(0.05)


def _manifest_times(target):
    """Sorted backup end times (as duplicity strings) of the manifests in a file:// target."""
    out = set()
    for name in os.listdir(os.fsencode(target)):
        if b".manifest" in name:
            m = re.search(rb"(\d{8}T\d{6}Z)\.manifest", name)
            out.add(m.group(1).decode())
    return sorted(out)


def _epoch(dup_time):
    return int(time.mktime(time.strptime(dup_time, "%Y%m%dT%H%M%SZ")) - time.timezone)


class Chain:
    """One backup chain made by one mode; every step's results, for the tests to compare."""

    def __init__(self, work, mode, variant, gnupghome, states, duplicity=DUPLICITY, python=None):
        self.mode, self.variant, self.states = mode, variant, states
        self.duplicity, self.python = duplicity, python
        self.path_opt = "--path-to-restore"  # 0.8.x spells it --file-to-restore; all have -r
        self.dir = os.path.join(work, f"{mode}-{variant}")
        self.target = os.path.join(self.dir, "target")
        self.url = "file://" + self.target
        self.env = clean_env(gnupghome, mode=mode, PASSPHRASE=PASSPHRASE)
        self.opts = [*VARIANTS[variant], "--name", f"e2e-{mode}-{variant}"]
        self.backups = []  # DupResult per backup
        self.times = []  # duplicity time strings of the 3 backups
        self.results = {}

    def dup(self, *args, check=True, archive=None, env=None):
        """Run duplicity with this chain's options and a private archive dir."""
        archive = archive or os.path.join(self.dir, "cache")
        return run_duplicity([args[0], *self.opts, "--archive-dir", archive, *args[1:]],
                             env or self.env, check=check, duplicity=self.duplicity,
                             python=self.python)

    def fresh(self, name):
        """A new empty path under the chain's directory."""
        p = os.path.join(self.dir, name)
        shutil.rmtree(p, ignore_errors=True)
        return p

    def run(self):
        """Make the chain and run every read-only operation on it; fill self.results."""
        last = 0
        for i, src in enumerate(self.states):
            _wait_next_second(last)
            action = "full" if i == 0 else "incremental"
            self.backups.append(self.dup(action, "-v", "info", "--volsize", "1",
                                         "--allow-source-mismatch", src,
                                         self.url))
            last = int(time.time())
        self.times = _manifest_times(self.target)
        assert len(self.times) == 3, self.times
        r = self.results
        for i, t in enumerate(self.times):
            out = self.fresh(f"restore-{i}")
            res = self.dup("restore", "-v", "info", "--time", str(_epoch(t)), self.url, out)
            r[f"restore-{i}"] = snapshot(out)
            r[f"restore-{i}-engine"] = ("restore [restore" in (res.banner() or "")
                                        and b"dupcore restore: stock" not in res.output)
            shutil.rmtree(out)
        out = self.fresh("single-file")
        self.dup("restore", "--time", str(_epoch(self.times[1])), self.path_opt,
                 "big/random.bin", self.url, out)
        r["single-file"] = entry(out, b"big/random.bin")
        out = self.fresh("single-dir")
        self.dup("restore", "--time", str(_epoch(self.times[0])), self.path_opt,
                 "Grüße", self.url, out)
        r["single-dir"] = snapshot(out)
        out = self.fresh("single-nonutf8")
        self.dup("restore", self.path_opt, os.fsdecode(NON_UTF8), self.url, out)
        r["single-nonutf8"] = entry(out, NON_UTF8)
        r["verify-ok"] = self.dup("verify", "--compare-data", self.url, self.states[2],
                                  check=False)
        r["verify-old"] = self.dup("verify", "--compare-data", "--time",
                                   str(_epoch(self.times[1])), self.url, self.states[2],
                                   check=False)
        r["collection-status"] = self.dup("collection-status", self.url)
        r["list-current-files"] = self.dup("list-current-files", self.url)
        r["list-at-full"] = self.dup("list-current-files", "--time",
                                     str(_epoch(self.times[0])), self.url)
        r["contents"] = archive_contents(self.target) if self.variant == "plain" else None

    def prune(self):
        """A second full, remove-older-than it, then cleanup of a stray volume; restore after."""
        r = self.results
        _wait_next_second(_epoch(self.times[-1]))
        self.dup("full", "--volsize", "1", "--allow-source-mismatch", self.states[2], self.url)
        times = _manifest_times(self.target)
        assert len(times) == 4, times
        r["remove-older-than"] = self.dup("remove-older-than", str(_epoch(times[-1])),
                                          "--force", self.url)
        # a stray volume of a backup that never finished: cleanup must delete it
        stray = f"duplicity-inc.{times[-1]}.to.20300101T000000Z.vol1.difftar"
        stray += ".gz" if self.variant == "plain" else ".gpg"
        with open(os.path.join(self.target, stray), "wb") as f:
            f.write(b"stray")
        r["cleanup"] = self.dup("cleanup", "--force", self.url)
        r["after-prune"] = sorted(
            re.sub(r"\d{8}T\d{6}Z", "T", n) for n in os.listdir(self.target))
        r["stray-left"] = os.path.exists(os.path.join(self.target, stray))
        r["collection-after"] = self.dup("collection-status", self.url)
        out = self.fresh("restore-after-prune")
        self.dup("restore", self.url, out)
        r["restore-after-prune"] = snapshot(out)
        shutil.rmtree(out)


def _volume_members(data):
    """(name, type, mode, mtime, payload) of each tar member of one decompressed volume."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:", errors="surrogateescape") as tf:
        for m in tf:
            payload = tf.extractfile(m).read() if m.isreg() else m.linkname.encode(
                "utf-8", "surrogateescape")
            yield m.name, m.type, m.mode, m.mtime, payload


def archive_contents(target):
    """Logical contents of a gz chain: per backup set, its files with multivol pieces joined,
    plus the decompressed signature tars. Independent of where volumes were split."""
    out = {}
    names = sorted(os.listdir(target))
    for kind in ("full", "inc"):
        vols = [n for n in names if n.startswith(f"duplicity-{kind}.") and ".vol" in n]
        for k, s in enumerate(sorted({re.sub(r"\.vol\d+\..*", "", n) for n in vols})):
            members = {}
            for n in sorted((n for n in vols if n.startswith(s + ".vol")),
                            key=lambda n: int(re.search(r"\.vol(\d+)\.", n).group(1))):
                with gzip.open(os.path.join(target, n)) as f:
                    data = f.read()
                for name, typ, mode, mtime, payload in _volume_members(data):
                    m = re.match(r"multivol_(snapshot|diff)/(.*)/\d+$", name)
                    key = f"{m.group(1)}/{m.group(2)}" if m else name
                    if key in members:
                        members[key] = members[key][:3] + (members[key][3] + payload,)
                    else:
                        members[key] = (typ, mode, mtime, payload)
            out[f"{kind}{k}"] = members
    new = 0
    for n in names:
        if "signatures" in n:
            key = "full-sig" if "full-signatures" in n else None
            if key is None:
                key, new = f"new-sig{new}", new + 1
            with gzip.open(os.path.join(target, n)) as f:
                out[key] = f.read()
    return out


@pytest.fixture(scope="session")
def chains(tmp_path_factory, states, gnupghome, pool):
    """All four chains (stock/dupcore x plain/sym), made two at a time."""
    work = tmp_path_factory.mktemp("e2e")
    made = {(m, v): Chain(str(work), m, v, gnupghome, states[0]) for v in VARIANTS for m in MODES}
    for f in [pool.submit(c.run) for c in made.values()]:
        f.result()
    return made


def _cross_restore(chain, gnupghome):
    other = "dupcore" if chain.mode == "stock" else "stock"
    env = clean_env(gnupghome, mode=other, PASSPHRASE=PASSPHRASE)
    snaps = []
    for i, t in enumerate(chain.times):
        out = chain.fresh(f"cross-{i}")
        res = chain.dup("restore", "-v", "info", "--time", str(_epoch(t)), chain.url, out,
                        archive=chain.fresh(f"cross-cache-{i}"), env=env)
        assert_active(res, other)
        snaps.append(snapshot(out))
        shutil.rmtree(out)
    return snaps


@pytest.fixture(scope="session")
def cross(chains, gnupghome, pool):
    """Each chain restored at every time point by the other mode, with a fresh archive dir."""
    futures = {k: pool.submit(_cross_restore, c, gnupghome) for k, c in chains.items()}
    return {k: f.result() for k, f in futures.items()}


@pytest.fixture(scope="session")
def pruned(chains, cross, pool):
    """The chains after a second full, remove-older-than and cleanup (after the cross-restores)."""
    for f in [pool.submit(c.prune) for c in chains.values()]:
        f.result()
    return chains


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mode", MODES)
def test_cross_restore(cross, states, mode, variant):
    """Archives made in one mode restore exactly in the other (stock <-> dupcore)."""
    for i, snap in enumerate(states[1]):
        assert_same_tree(snap, cross[mode, variant][i], f"{mode}-made {variant} time {i}")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mode", MODES)
def test_backups_ran_in_the_expected_mode(chains, mode, variant):
    """dupcore's Info line shows in every dupcore run's -v info log and in no stock run."""
    for res in chains[mode, variant].backups:
        assert_active(res, mode)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mode", MODES)
def test_restore_every_time_point(chains, states, mode, variant):
    """restore --time of each backup gives back exactly the tree that was backed up."""
    c = chains[mode, variant]
    for i, snap in enumerate(states[1]):
        assert_same_tree(snap, c.results[f"restore-{i}"], f"{mode}/{variant} time {i}")
        # dupcore restores go through the restore engine, stock ones do not
        assert c.results[f"restore-{i}-engine"] == (mode == "dupcore")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mode", MODES)
def test_path_to_restore(chains, states, mode, variant):
    """--path-to-restore of a multi-volume file, a unicode dir and a non-UTF-8 name."""
    c = chains[mode, variant]
    src = states[0]
    assert c.results["single-file"] == entry(os.path.join(src[1], b"big/random.bin"),
                                             b"big/random.bin")
    assert_same_tree(snapshot(os.path.join(src[0], "Grüße".encode())),
                     c.results["single-dir"], "single dir")
    assert c.results["single-nonutf8"] == entry(os.path.join(src[2], NON_UTF8), NON_UTF8)


def _verify_summary(res):
    m = re.search(rb"Verify complete: (\d+) file(?:\(s\)|s)? compared, (\d+) difference(?:\(s\)|s)? found",
                  res.output)
    assert m, res.text()
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_verify_compare_data(chains, variant):
    """verify --compare-data: clean at the last backup, differences against an older one."""
    got = {}
    for mode in MODES:
        r = chains[mode, variant].results
        assert r["verify-ok"].returncode == 0, r["verify-ok"].text()
        assert _verify_summary(r["verify-ok"])[1] == 0
        assert r["verify-old"].returncode != 0
        got[mode] = (_verify_summary(r["verify-ok"]), _verify_summary(r["verify-old"]))
        assert got[mode][1][1] > 0
    assert got["stock"] == got["dupcore"]


def _listing(res):
    return [ln for ln in res.stdout.splitlines()
            if not ln.startswith((b"Last full backup", b"Local and Remote", b"Synchroniz",
                                  b"Copying", b"Deleting", b"Processing"))]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_list_current_files_identical(chains, variant):
    """list-current-files (latest and at the full) prints the same for stock and dupcore."""
    for key in ("list-current-files", "list-at-full"):
        stock = _listing(chains["stock", variant].results[key])
        dup = _listing(chains["dupcore", variant].results[key])
        assert len(stock) > 100
        assert stock == dup


def _sets(res):
    return re.findall(rb"^\s*(Full|Incremental)\s+.*?(\d+)\s*$", res.stdout, re.MULTILINE)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_collection_status_identical(chains, variant):
    """collection-status shows the same backup sets, each with several volumes in the full."""
    stock = _sets(chains["stock", variant].results["collection-status"])
    dup = _sets(chains["dupcore", variant].results["collection-status"])
    assert [s[0] for s in stock] == [b"Full", b"Incremental", b"Incremental"]
    assert [s[0] for s in dup] == [s[0] for s in stock]
    # the 3 MiB of random data spans several 1 MiB volumes; the volumes component may split
    # volumes at other points than stock (it estimates the compressed size), so counts may differ
    assert int(stock[0][1]) >= 3 and int(dup[0][1]) >= 3


def test_archive_contents_identical(chains):
    """Same files, deltas and signatures in the gz chains of both modes (volume splits aside)."""
    stock = chains["stock", "plain"].results["contents"]
    dup = chains["dupcore", "plain"].results["contents"]
    assert sorted(stock) == ["full-sig", "full0", "inc0", "inc1", "new-sig0", "new-sig1"]
    assert sorted(stock) == sorted(dup)
    assert sum(1 for k in stock["inc0"] if k.startswith("diff/")) >= 3  # real rsync deltas
    for k in stock:
        if k.endswith("sig") or "-sig" in k:
            assert stock[k] == dup[k], f"{k} differs"
            continue
        assert sorted(stock[k]) == sorted(dup[k]), f"{k}: different members"
        for name in stock[k]:
            assert stock[k][name] == dup[k][name], f"{k}: {name} differs"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_remove_older_than_and_cleanup(pruned, states, variant):
    """remove-older-than drops the old chain, cleanup the stray file; identical across modes."""
    got = {}
    for mode in MODES:
        r = pruned[mode, variant].results
        assert not r["stray-left"]
        sets = _sets(r["collection-after"])
        assert [s[0] for s in sets] == [b"Full"]
        assert_same_tree(states[1][2], r["restore-after-prune"], "restore after prune")
        # volume split points may differ (see test_collection_status_identical): compare the
        # files left with their volume numbers folded
        got[mode] = sorted({re.sub(r"\.vol\d+\.", ".vol*.", n) for n in r["after-prune"]})
    assert got["stock"] == got["dupcore"]
