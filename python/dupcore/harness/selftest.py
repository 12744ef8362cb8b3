"""``python -m dupcore selftest``: real backup and restore round trips with the installed duplicity.

In a temporary directory: a small tree with awkward names is backed up (full, then incremental
after a change) with ``--no-encryption`` and with symmetric gpg (passphrase via ``PASSPHRASE``),
restored at both times, verified with ``--compare-data``, and compared with the sources. The runs
use dupcore as this environment configures it (``DUPCORE``/``DUPCORE_DISABLE`` apply). Exit code 0
means every check passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence

from dupcore.harness.demo import duplicity_command
from dupcore.harness.trees import same_tree, snapshot

PASSPHRASE = "dupcore-selftest"


def _tree(root, changed=False):
    files = {
        "plain.txt": b"hello\n" * 1000,
        "Grüße/日本語.txt": "こんにちは\n".encode() * 200,
        "n" * 150 + ".txt": b"long name\n",
        "deep/" + "/".join(c * 90 for c in "abc") + "/f.bin": bytes(range(256)) * 300,
        "empty": b"",
        "db.bin": b"".join(i.to_bytes(4, "little") * 16 for i in range(300000)),
    }
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (1_600_000_000, 1_600_000_000))
    with open(os.path.join(os.fsencode(root), b"latin1_caf\xe9"), "wb") as f:
        f.write(b"non-UTF-8 name\n")
    os.makedirs(os.path.join(root, "empty_dir"))
    os.symlink("plain.txt", os.path.join(root, "link"))
    if changed:
        with open(os.path.join(root, "db.bin"), "r+b") as f:
            f.seek(400_000)
            f.write(b"changed" * 1000)
        with open(os.path.join(root, "plain.txt"), "ab") as f:
            f.write(b"appended\n")
        os.unlink(os.path.join(root, "empty"))
        for rel in ("db.bin", "plain.txt"):
            os.utime(os.path.join(root, rel), (1_700_000_000, 1_700_000_000))
    for dirpath, _d, _f in os.walk(root, topdown=False):
        os.utime(dirpath, (1_600_000_000, 1_600_000_000))


def _run(args, env, log):
    proc = subprocess.run(duplicity_command() + args, env=env, capture_output=True, check=False)
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    log.append((args[0], proc.returncode, out))
    if proc.returncode != 0:
        raise RuntimeError(f"duplicity {args[0]} exited {proc.returncode}:\n{out[-3000:]}")
    return out


def round_trip(work: str, variant: str, env: dict[str, str]) -> tuple[bool, list[str]]:
    """One chain: full, incremental, two restores, verify; returns (ok, messages)."""
    log = []
    src0, src1 = os.path.join(work, "src0"), os.path.join(work, "src1")
    d = os.path.join(work, variant)
    url = "file://" + os.path.join(d, "target")
    common = (["--no-encryption"] if variant == "plain" else []) + [
        "--archive-dir", os.path.join(d, "cache"), "--name", "selftest", "--volsize", "1"]
    msgs = []
    out = _run(["full", "-v", "info", *common, src0, url], env, log)
    banner = next((ln for ln in out.splitlines() if ln.startswith("dupcore ")), None)
    msgs.append(banner or "no dupcore line in duplicity's log (dupcore not active)")
    t_full = int(time.time())
    while int(time.time()) <= t_full:
        time.sleep(0.05)
    _run(["incremental", *common, "--allow-source-mismatch", src1, url], env, log)
    for label, when, src in (("full", str(t_full), src0), ("incremental", "now", src1)):
        out_dir = os.path.join(d, f"restore-{label}")
        _run(["restore", *common, "--time", when, url, out_dir], env, log)
        problem = same_tree(snapshot(src), snapshot(out_dir))
        if problem:
            return False, [*msgs, f"restore of the {label} backup differs: {problem}"]
    _run(["verify", "--compare-data", *common, url, src1], env, log)
    return True, msgs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the round trips; print one line per check; exit 0 when all pass."""
    ap = argparse.ArgumentParser(prog="python -m dupcore selftest", description=__doc__)
    ap.add_argument("--variants", default="plain,sym")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="dupcore-selftest-")
    gnupghome = os.path.join(work, "gnupg")
    os.makedirs(gnupghome, mode=0o700)
    env = dict(os.environ, TZ="UTC", PASSPHRASE=PASSPHRASE, GNUPGHOME=gnupghome)
    failed = 0
    try:
        _tree(os.path.join(work, "src0"))
        _tree(os.path.join(work, "src1"), changed=True)
        for variant in [v for v in args.variants.split(",") if v]:
            if variant == "sym" and shutil.which("gpg") is None:
                print("FAIL sym: gpg is not installed")
                failed += 1
                continue
            try:
                ok, msgs = round_trip(work, variant, env)
            except RuntimeError as exc:
                ok, msgs = False, [str(exc)]
            print(f"{'ok  ' if ok else 'FAIL'} {variant}: full, incremental, restore at both "
                  "times, verify --compare-data")
            for m in msgs:
                print(f"     {m}")
            failed += not ok
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("selftest passed" if not failed else f"selftest FAILED ({failed})")
    return 1 if failed else 0
