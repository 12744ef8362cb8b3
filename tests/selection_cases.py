"""Random trees and random selection options, each checked against duplicity's own
``Select``: the cases of ``test_backup_selection.py``. Also a script, for the venvs of other
duplicity versions: ``python tests/selection_cases.py DIR CASES LINE`` prints how many cases it
compared (an AssertionError names the first case that differs)."""

from __future__ import annotations

import os
import random
import sys

from dupcore import _core
from dupcore import backup as backup_scan

NAMES = ["a", "b", "ab", "a.txt", "b.log", "é", "x y", "[c]", "d-e", ".hidden", "nb", "*", "?"]


def _tree(root: bytes, rng: random.Random) -> list[bytes]:
    """A random tree below ``root``; returns the relative paths made."""
    made = []

    def fill(d: bytes, depth: int) -> None:
        for name in rng.sample(NAMES, rng.randint(0, 5)):
            p = os.path.join(d, name.encode())
            rel = os.path.relpath(p, root)
            kind = rng.random()
            if kind < 0.35 and depth < 3:
                os.mkdir(p)
                if rng.random() < 0.15:
                    open(os.path.join(p, b".nobackup"), "wb").close()
                fill(p, depth + 1)
            elif kind < 0.85:
                with open(p, "wb") as f:
                    f.write(b"x")
                os.utime(p, (rng.choice([1e9, 2e9]),) * 2)
            elif kind < 0.95:
                os.symlink(b"a", p)
            else:
                os.mkfifo(p)
            made.append(rel)
    if rng.random() < 0.2:
        with open(os.path.join(root, b"bad\xff"), "wb") as f:
            f.write(b"non-UTF-8 name")
        made.append(b"bad\xff")
    fill(root, 0)
    return made


def _glob(root: str, made: list[bytes], rng: random.Random) -> str:
    """A glob built from a path of the tree, with wildcards."""
    parts = os.fsdecode(rng.choice(made)).split("/") if made else ["a"]
    out = []
    for p in parts:
        r = rng.random()
        if r < 0.15:
            p = "*"
        elif r < 0.25:
            p = "**"
        elif r < 0.35 and p:
            p = p[:-1] + "?"
        elif r < 0.45 and p:
            p = "[" + p[0] + "z]" + p[1:]
        elif r < 0.5 and p:
            p = "[!q]" + p[1:]
        out.append(p)
    glob = "/".join(out)
    glob = f"**/{glob}" if rng.random() < 0.3 else f"{root}/{glob}"
    if rng.random() < 0.2:
        glob += "/"
    return glob


def _options(root: str, made: list[bytes], rng: random.Random) -> list[tuple[str, str]]:
    opts = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.7:
            opts.append((rng.choice(["--include", "--exclude"]), _glob(root, made, rng)))
        elif r < 0.8:
            opts.append(("--exclude-if-present", ".nobackup"))
        elif r < 0.9:
            opts.append(("--exclude-device-files", None))
        else:
            opts.append(("--exclude-older-than", 1_500_000_000))
    if rng.random() < 0.5:
        opts.append(("--exclude", "**"))
    return opts


def run_cases(work: str, cases: int, line: str) -> int:
    """Compare the engine with duplicity's ``Select`` on ``cases`` random trees under ``work``;
    returns how many were compared (an AssertionError names the first that differs)."""
    from duplicity import config, errors, globmatch, log, path, selection

    # duplicity 3.2 raises errors.FatalError; older lines exit through log.FatalError
    fatal = tuple(e for e in (getattr(errors, "FatalError", None),) if e is not None)
    log.setup()
    log.setverbosity(log.ERROR)
    rng = random.Random(20261206)
    compared = 0
    for case in range(cases):
        root = os.fsencode(os.path.join(work, f"t{case}"))
        os.mkdir(root)
        made = _tree(root, rng)
        opts = _options(os.fsdecode(root), made, rng)
        sel = selection.Select(path.Path(root))
        try:
            if hasattr(sel, "ParseArgs"):
                sel.ParseArgs(opts, [])
            else:
                from duplicity import cli_util
                cli_util.parse_selection_args(sel, opts, [])
        except (*fatal, globmatch.GlobbingError, SystemExit):
            continue  # duplicity refuses these options (e.g. an include last)
        sel.set_iter()
        expected = [p.index for p in sel]
        rules = backup_scan.engine_rules(sel, config, line)
        if any(isinstance(a, str) and any("\udc80" <= c <= "\udcff" for c in a)
               for _o, a in opts):
            # a glob with an undecodable byte: duplicity's selection feeds the engine instead
            assert rules is None, f"case {case}: {opts}"
            continue
        assert rules is not None, f"case {case}: the engine does not take {opts}"
        got = [tuple(i) for i in _core.backup_walk(root, rules)]
        assert got == expected, f"case {case}: {opts}"
        compared += 1
    return compared



if __name__ == "__main__":
    print("compared", run_cases(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
