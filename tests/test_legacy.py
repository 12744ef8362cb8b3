"""Legacy archives made by duplicity 0.8.22 and 3.0.7 restore through dupcore, exactly.

Every chain in tests/fixtures/legacy restores with the installed duplicity running on dupcore, at
each backup time and for the two single-path restores, and must match the expected JSON: types,
sizes, sha256, modes, uid/gid, mtimes and symlink targets. duplicity restores hard links as separate
files and does not restore symlink mtimes, so those are not compared. Encrypted chains are read
in-process, with the fixture keys imported into a throwaway GNUPGHOME and its gpg-agent holding the
secret keys, SED packets without MDC included; no file goes to stock gpg.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest
from helpers import (
    LEGACY,
    PASSPHRASE,
    assert_active,
    assert_same_tree,
    clean_env,
    entry,
    run_duplicity,
    snapshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.gpg]

CHAINS = sorted(p.name[: -len(".json")] for p in (LEGACY / "expected").glob("*.json"))


def expected_entry(e):
    """Turn an entry of the fixture JSON into the form helpers.entry() produces."""
    out = {"path_hex": e["path_hex"], "type": e["type"], "mode": e["mode"], "uid": e["uid"],
           "gid": e["gid"]}
    if e["type"] == "sym":
        out["target_hex"] = e["target_hex"]
    else:
        out["mtime"] = e["mtime"]
    if e["type"] == "reg":
        out.update(size=e["size"], sha256=e["sha256"])
    return out


def expected_tree(tree):
    """Snapshot-shaped dict of one backup point of the fixture JSON."""
    return {bytes.fromhex(e["path_hex"]): expected_entry(e) for e in tree}


def restore_chain(chain, gnupghome):
    """Restore every time point and single path of one chain; return a list of failures."""
    spec = json.loads((LEGACY / "expected" / f"{chain}.json").read_text())
    url = "file://" + str(LEGACY / spec["archive_dir"])
    env = clean_env(gnupghome, PASSPHRASE=PASSPHRASE, SIGN_PASSPHRASE=PASSPHRASE)
    base = ["--name", spec["name"], *spec["restore_options"]]
    failures = []
    work = tempfile.mkdtemp(prefix=f"legacy-{chain}-")
    try:
        archive_dir = os.path.join(work, "cache")
        for b in spec["backups"]:
            target = os.path.join(work, f"restore-{b['index']}")
            try:
                res = run_duplicity(["restore", "-v", "info", *base, "--archive-dir",
                                     archive_dir, "--time", b["epoch"], url, target], env)
                assert_active(res, "dupcore")
                # Every encrypted volume is read in-process (secret keys through gpg-agent),
                # SED packets without MDC included: no file goes to stock gpg.
                fallbacks = [ln for ln in res.text().splitlines() if "stock gpg (" in ln]
                assert not fallbacks, f"{chain}: {fallbacks[:3]}"
                assert_same_tree(expected_tree(b["tree"]), snapshot(target),
                                 f"{chain} restore --time {b['epoch']} ({b['type']})")
            except AssertionError as exc:
                failures.append(str(exc))
            shutil.rmtree(target, ignore_errors=True)
        for i, single in enumerate(spec["single_path_restores"]):
            target = os.path.join(work, f"single-{i}")
            try:
                run_duplicity(["restore", *base, "--archive-dir", archive_dir, "--time",
                               single["epoch"], "--path-to-restore", single["path"], url,
                               target], env)
                want = expected_entry(single["expected"])
                got = entry(target, bytes.fromhex(want["path_hex"]))
                assert got == want, f"{chain} --path-to-restore {single['path']}: {got} != {want}"
            except AssertionError as exc:
                failures.append(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return failures


@pytest.fixture(scope="session")
def legacy_results(request, pool, gnupghome):
    """Futures of restore_chain for the selected chains, started together on the pool."""
    wanted = {item.callspec.params["chain"] for item in request.session.items
              if getattr(item, "callspec", None) and "chain" in item.callspec.params
              and item.module.__name__ == __name__}
    return {c: pool.submit(restore_chain, c, gnupghome) for c in sorted(wanted)}


def test_every_fixture_chain_is_listed():
    """The fixture set is complete: 10 chains from 0.8.22 and 9 from 3.0.7, with archives."""
    assert len([c for c in CHAINS if c.startswith("0.8.22__")]) == 10
    assert len([c for c in CHAINS if c.startswith("3.0.7__")]) == 9
    for c in CHAINS:
        spec = json.loads((LEGACY / "expected" / f"{c}.json").read_text())
        files = {f["name"] for b in spec["backups"] for f in b["files_created"]}
        present = set(os.listdir(LEGACY / spec["archive_dir"]))
        assert files <= present, f"{c}: missing {sorted(files - present)}"


@pytest.mark.parametrize("chain", CHAINS)
def test_legacy_chain_restores_through_dupcore(chain, legacy_results):
    """All time points and single-path restores of one legacy chain match the expected trees."""
    failures = legacy_results[chain].result()
    assert not failures, "\n\n".join(failures)
