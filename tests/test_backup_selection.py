"""The backup scan's file selection against duplicity's own ``Select``, on random trees with
random selection options: shell globs (``*``, ``**``, ``?``, classes, trailing ``/``, include
and exclude), ``--exclude-if-present``, ``--exclude-device-files`` and
``--exclude-older-than``. For every case the engine must take the selection functions and
select exactly the paths duplicity's ``Select`` yields, in the same order."""

from __future__ import annotations

import os
import random

import pytest
from dupcore import _core
from dupcore import backup as backup_scan

NAMES = ["a", "b", "ab", "a.txt", "b.log", "é", "x y", "[c]", "d-e", ".hidden", "nb", "*", "?"]
CASES = int(os.environ.get("DUPCORE_SELECTION_CASES", "400"))


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


@pytest.fixture(scope="module")
def duplicity_modules():
    from duplicity import cli_util, config, errors, globmatch, log, path, selection

    log.setup()
    log.setverbosity(log.ERROR)
    return cli_util, config, errors, path, selection, globmatch


def test_random_trees_and_rules_select_as_duplicity(tmp_path, duplicity_modules):
    cli_util, config, errors, path, selection, globmatch = duplicity_modules
    rng = random.Random(20261206)
    compared = 0
    for case in range(CASES):
        root = os.fsencode(tmp_path / f"t{case}")
        os.mkdir(root)
        made = _tree(root, rng)
        opts = _options(os.fsdecode(root), made, rng)
        sel = selection.Select(path.Path(root))
        try:
            cli_util.parse_selection_args(sel, opts, [])
        except (errors.FatalError, globmatch.GlobbingError):
            continue  # duplicity refuses these options (e.g. an include last)
        sel.set_iter()
        expected = [p.index for p in sel]
        rules = backup_scan.engine_rules(sel, config, "3.2.x")
        if any(isinstance(a, str) and any("\udc80" <= c <= "\udcff" for c in a)
               for _o, a in opts):
            # a glob with an undecodable byte: duplicity's selection feeds the engine instead
            assert rules is None, f"case {case}: {opts}"
            continue
        assert rules is not None, f"case {case}: the engine does not take {opts}"
        got = [tuple(i) for i in _core.backup_walk(root, rules)]
        assert got == expected, f"case {case}: {opts}"
        compared += 1
    assert compared > CASES // 2
