"""Random trees and random selection options, each checked against duplicity's own
``Select``: the cases of ``test_backup_selection.py``. Also a script, for the venvs of other
duplicity versions: ``python tests/selection_cases.py DIR CASES LINE`` prints how many cases it
compared (an AssertionError names the first case that differs)."""

from __future__ import annotations

import collections
import io
import os
import random
import re
import sys

from dupcore import _core
from dupcore import backup as backup_scan

NAMES = ["a", "b", "ab", "a.txt", "b.log", "é", "x y", "[c]", "d-e", ".hidden", "nb", "*", "?",
         "a1", "22", "{x}", "b+c", "(p)", "a\nb", "A",
         # names where Python's case-insensitive matching has its own rules: the Kelvin sign
         # lowercases to k, ſ and s are equivalent, İ lowercases to i, ß has a capital ẞ
         "K.TXT", "\u212a", "ſ", "S", "İ", "ı", "I", "ß", "ẞ", "É", "µ", "Μ"]
# Regular expression pieces the engine translates, and some it must leave to duplicity
# (Python's \d, \w, \b, lookarounds and inline flags have no exact counterpart).
TAKEN = ["[^/]*", ".*", "[ab]+", "(a|b)", "(?:x)?", "a{1,2}", ".", "[^a-c]", "b*?", "(a|)",
         "\\.", "x{2,}", "[.]", "\\A/", "$", "\\Z"]
REFUSED = ["\\d", "\\w+", "(?=a)", "(?-i:a)", "\\b", "(?!x)", "a*+", "\\s"]


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
        if rng.random() < 0.2:
            p = p.swapcase()  # matters where the case is ignored
        out.append(p)
    glob = "/".join(out)
    glob = f"**/{glob}" if rng.random() < 0.3 else f"{root}/{glob}"
    if rng.random() < 0.2:
        glob += "/"
    if rng.random() < 0.15:
        glob = "ignorecase:" + glob
    return glob


def _regexp(root: str, made: list[bytes], rng: random.Random) -> tuple[str, bool]:
    """A regular expression built from a path of the tree, and whether the engine takes it."""
    parts = os.fsdecode(rng.choice(made)).split("/") if made else ["a"]
    out = []
    for p in parts:
        r = rng.random()
        if r < 0.3:
            p = rng.choice(TAKEN)
        elif r < 0.35:
            p = rng.choice(REFUSED)
        else:
            p = re.escape(p.swapcase() if rng.random() < 0.2 else p)
        out.append(p)
    pattern = "/".join(out)
    r = rng.random()
    if r < 0.3:
        pattern = "^" + re.escape(root) + "/" + pattern
    elif r < 0.5:
        pattern = pattern.split("/")[-1]  # searched anywhere in the path
    if rng.random() < 0.3:
        pattern += "$"
    try:
        re.compile(pattern)
    except re.error:
        return re.escape(root), True
    return pattern, not any(r in pattern for r in REFUSED)


def _literal(root: str, made: list[bytes], rng: random.Random) -> str:
    """A literal path of the tree (or a prefix of one), sometimes with a trailing ``/``."""
    rel = os.fsdecode(rng.choice(made)) if made else "a"
    if rng.random() < 0.2:
        rel = rel[: rng.randint(1, len(rel))]
    if rng.random() < 0.2:
        rel = rel.swapcase()  # matters where the case is ignored
    lit = f"{root}/{rel}"
    return lit + "/" if rng.random() < 0.2 else lit


def _undecodable(pattern: str) -> bool:
    """Whether a pattern holds an undecodable byte (a lone surrogate): duplicity's selection
    then feeds the engine instead."""
    return any("\udc80" <= c <= "\udcff" for c in pattern)


def _options(root: str, made: list[bytes], rng: random.Random) -> tuple[list, bool]:
    """Random selection options, and whether the engine takes them all."""
    opts, taken, mode, nocase = [], True, "globbing", False
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.08:
            mode = rng.choice(["globbing", "literal", "regexp"])
            opts.append((f"--filter-{mode}", None))
        elif r < 0.11:
            nocase = rng.random() < 0.5
            opts.append(("--filter-ignorecase" if nocase else "--filter-strictcase", None))
        elif r < 0.55:
            if mode == "literal":
                if not nocase and rng.random() < 0.25:
                    nocase = True
                    opts.append(("--filter-ignorecase", None))
                arg = _literal(root, made, rng)  # compared as bytes, whatever they are
                taken = taken and not (nocase and _undecodable(arg))  # unless casefolded
            elif mode == "regexp":
                arg, ok = _regexp(root, made, rng)
                taken = taken and ok and not _undecodable(arg)
            else:
                arg = _glob(root, made, rng)
                taken = taken and not _undecodable(arg)
            opts.append((rng.choice(["--include", "--exclude"]), arg))
        elif r < 0.7:
            arg, ok = _regexp(root, made, rng)
            taken = taken and ok and not _undecodable(arg)
            opts.append((rng.choice(["--include-regexp", "--exclude-regexp"]), arg))
        elif r < 0.8:
            opts.append(("--exclude-if-present", ".nobackup"))
        elif r < 0.9:
            opts.append(("--exclude-device-files", None))
        else:
            opts.append(("--exclude-older-than", 1_500_000_000))
    if rng.random() < 0.5:
        if mode != "globbing":
            opts.append(("--filter-globbing", None))
        opts.append(("--exclude", "**"))
    return opts, taken


def files_from(made: list[bytes], rng: random.Random, chance: float = 0.25) -> str | None:
    """A random ``--files-from`` list (newline-separated, relative) for ``chance`` of the cases:
    paths of the tree, parents and children alike, and names that do not exist."""
    if rng.random() >= chance:
        return None
    names = [os.fsdecode(p) for p in made if b"\n" not in p]
    picked = rng.sample(names, min(len(names), rng.randint(0, 6)))
    picked += rng.sample(["nope", "a/nope", "x y/zz", "[c]/a.txt"], rng.randint(0, 2))
    return "\n".join(picked) + ("\n" if rng.random() < 0.5 else "")


def _casefolded_literals(opts: list) -> int:
    """How many of the options are literal strings compared case-insensitively (the
    ``--filter-*`` switches apply to the options after them)."""
    mode, nocase, count = "globbing", False, 0
    for opt, _arg in opts:
        if opt in ("--filter-globbing", "--filter-literal", "--filter-regexp"):
            mode = opt.removeprefix("--filter-")
        elif opt in ("--filter-ignorecase", "--filter-strictcase"):
            nocase = opt == "--filter-ignorecase"
        elif opt in ("--include", "--exclude") and mode == "literal" and nocase:
            count += 1
    return count


# How many compared cases had a rule of each kind ("glob", "regexp", "literal", …).
COMPARED_RULES: collections.Counter = collections.Counter()


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
        opts, taken = _options(os.fsdecode(root), made, rng)
        listed = files_from(made, rng)
        lists = []
        if listed is not None:
            opts = [("--files-from", "list"), *opts]
            lists = [io.StringIO(listed)]
        sel = selection.Select(path.Path(root))
        try:
            if hasattr(sel, "ParseArgs"):
                sel.ParseArgs(opts, lists)
            else:
                from duplicity import cli_util
                cli_util.parse_selection_args(sel, opts, lists)
        except (*fatal, globmatch.GlobbingError, SystemExit):
            continue  # duplicity refuses these options (e.g. an include last)
        sel.set_iter()
        expected = [p.index for p in sel]
        rules = backup_scan.engine_rules(sel, config, line)
        if not taken:
            assert rules is None, f"case {case}: the engine takes {opts}"
            continue
        assert rules is not None, f"case {case}: the engine does not take {opts}"
        got = [tuple(i) for i in _core.backup_walk(root, rules,
                                                   backup_scan.engine_files_from(sel))]
        assert got == expected, f"case {case}: {opts} {listed!r}"
        compared += 1
        COMPARED_RULES.update({r[0] for r in rules})
        if any(o == "--filter-ignorecase" for o, _ in opts) or any(
                isinstance(a, str) and a.lower().startswith("ignorecase:") for _, a in opts):
            COMPARED_RULES["ignorecase"] += 1
        if _casefolded_literals(opts):
            COMPARED_RULES["ignorecase_literal"] += 1
        if listed is not None:
            COMPARED_RULES["files_from"] += 1
    return compared



if __name__ == "__main__":
    n = run_cases(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    print(" ".join(f"{k}={v}" for k, v in sorted(COMPARED_RULES.items())))
    print("compared", n)
