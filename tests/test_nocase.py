"""``dupcore.nocase``: case-insensitive expressions rewritten case-sensitive match exactly what
Python's ``re`` with ``IGNORECASE`` matches, checked on every character of the BMP and a
sample beyond, and on whole names. What the rewrite cannot take is refused."""

from __future__ import annotations

import re

import pytest
from dupcore import nocase

FLAGS = re.IGNORECASE | re.DOTALL | re.UNICODE
# One-character patterns: literals with Python's special equivalences (k and the Kelvin sign,
# s and ſ, i, İ and ı, µ and μ, ß and ẞ, σ and ς, θ and ϑ), uncased literals, classes with
# ranges and negations, and the classes duplicity's globs make.
SINGLE = ["k", "K", "\u212a", "s", "S", "\u017f", "i", "I", "\u0130", "\u0131", "\u00b5", "\u03bc",
          "\u00df", "\u1e9e", "\u03c3", "\u03c2", "\u03b8", "\u03d1", "é", "1", "/", "\\.", "ǅ",
          "[a-f]", "[^a-f]", "[kq]", "[^k]", "[^/]", "[!q]", "[A-Z0-9_]", "[\u0100-\u017f]",
          "[^\u0100-\u017f]", "[ſ-ƀ]", "[.]", "[\\]z]", "."]
# Whole patterns: globs as duplicity writes them, and regular expressions.
WHOLE = [r"^/tmp/[^/]*\.SOCK($|/)", r"^.*/k[^/]*\.TxT($|/)", r"(a|Bc)+x{2,3}?$",
         r"^(/|/tmp|/tmp/İ)$", r"\A[Ss]t(?:A|b)*?\Z", "straße|STRASSE"]
NAMES = ["/tmp/x.sock", "/TMP/y.SOCK", "/tmp/y.ſock", "/a/b/\u212a.txt", "/a/K.TXT", "/a/k.tx",
         "abcxx", "ABCXXX", "ABCX", "/tmp/i", "/tmp/İ", "/TMP/ı", "/TMP/I", "Stab", "ſTAB",
         "straße", "STRASSE", "STRAẞE", "strasse", "/tmp", "/"]
REFUSED = [r"\d", r"\w+", r"a\b", r"(?=a)b", r"(?-i:a)", "a*+", r"[\s]", "\U00010400", "[\U00010400]",
           r"(a)\1", "(?>ab)"]


def _rewritten(pattern: str) -> re.Pattern:
    compiled = re.compile(pattern, FLAGS)
    out = nocase.case_sensitive(compiled.pattern, compiled.flags)
    assert out is not None, pattern
    text, flags = out
    assert not flags & re.IGNORECASE
    return re.compile(text, flags)


@pytest.mark.parametrize("pattern", SINGLE)
def test_one_character_matches_every_character_as_python(pattern):
    nocase_re, sensitive = re.compile(pattern, FLAGS), _rewritten(pattern)
    points = list(range(0xD800)) + list(range(0xE000, 0x10000)) + list(range(0x10000, 0x110000, 97))
    differ = [hex(cp) for cp in points
              if bool(nocase_re.fullmatch(chr(cp))) != bool(sensitive.fullmatch(chr(cp)))]
    assert not differ, (pattern, sensitive.pattern, differ[:10])


@pytest.mark.parametrize("pattern", WHOLE)
def test_whole_patterns_match_names_as_python(pattern):
    nocase_re, sensitive = re.compile(pattern, FLAGS), _rewritten(pattern)
    for name in NAMES:
        assert bool(nocase_re.search(name)) == bool(sensitive.search(name)), (pattern, name)
        assert bool(nocase_re.match(name)) == bool(sensitive.match(name)), (pattern, name)


@pytest.mark.parametrize("pattern", REFUSED)
def test_what_the_rewrite_cannot_take_is_refused(pattern):
    compiled = re.compile(pattern, FLAGS)
    assert nocase.case_sensitive(compiled.pattern, compiled.flags) is None


def test_case_sensitive_or_other_flags_are_not_rewritten():
    assert nocase.case_sensitive("a", re.DOTALL | re.UNICODE | re.IGNORECASE | re.MULTILINE) is None
    assert nocase.case_sensitive("a", re.IGNORECASE | re.ASCII) is None


def _duplicity_literal(lit, name, include):
    """``select_fn_from_literal``'s function with ``ignore_case``, as duplicity writes it."""
    if lit != "/" and lit[-1] == "/":
        lit = lit[:-1]
    lit = lit.casefold()
    name = name.casefold()
    if name == lit:
        return include
    if name.startswith(lit) and name[len(lit)] == "/":
        return include
    if lit.startswith(name) and lit[len(name)] == "/" and include == 1:
        return 2
    return None


def _engine_literal(patterns, name, include):
    """The engine's glob rule (no trailing-slash form) over the rewritten expressions."""
    matches, scan = (re.compile(p, re.DOTALL) for p in patterns)
    if matches.match(name):
        return include
    if include == 1 and scan.match(name):
        return 2
    return None


def test_case_insensitive_literal_strings_select_as_duplicity():
    """Random literals and names over characters whose casefold is special (ß → ss, ﬅ → st,
    İ → i̇, the Kelvin sign → k, ſ → s): the rewritten glob rule decides as duplicity's
    casefolded comparison, for include and exclude."""
    import random

    rng = random.Random(1206)
    alphabet = ["s", "S", "ß", "ẞ", "ſ", "t", "ﬅ", "ﬆ", "k", "K", "\u212a", "i", "I", "İ", "ı",
                "\u0307", "a", "/", "/", "."]
    compared = decided = 0
    for _ in range(400):
        lit = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if rng.random() < 0.2:
            lit += "/"
        held = lit[:-1] if lit != "/" and lit.endswith("/") else lit
        patterns = nocase.literal_patterns(held.casefold())
        assert patterns is not None, lit
        for _ in range(40):
            # names: the literal itself with letters swapped or refolded, or random
            if rng.random() < 0.5:
                name = "".join(rng.choice([c, c.swapcase(), c.casefold()]) for c in held)
                name += rng.choice(["", "", "/x", "/ß", "x"])
            else:
                name = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
            name = name.rstrip("/") or "/"
            for include in (0, 1):
                want = _duplicity_literal(lit, name, include)
                assert _engine_literal(patterns, name, include) == want, (lit, name, include)
                compared += 1
                decided += want is not None
    assert decided > compared // 10, (decided, compared)


def test_case_insensitive_literal_with_undecodable_bytes_is_refused():
    assert nocase.literal_patterns("/a/b\udcff".casefold()) is None


def test_long_literals_stay_small_or_are_refused():
    """A literal of 64 directories gives expressions linear in its length, which the engine
    compiles; deeper ones (the parents nest one group each), or one whose many ``ss`` could
    each be ``ß`` (an exponential expression), are left to duplicity."""
    from dupcore import _core

    deep = nocase.literal_patterns("/" + "abc/" * 63 + "x")
    assert deep is not None and max(map(len, deep)) < 10_000
    name = "/" + "ABC/" * 63 + "X"
    assert re.match(deep[0], name) and not re.match(deep[1], name)
    assert re.match(deep[1], "/" + "AbC/" * 62 + "abc")
    assert not re.match(deep[1], "/" + "AbC/" * 62 + "abd")
    flags = re.DOTALL | re.UNICODE
    assert _core.backup_selection_ok([("glob", 1, deep[0], flags, None, deep[1], flags)])
    assert nocase.literal_patterns("/" + "abc/" * 64 + "x") is None
    assert nocase.literal_patterns("/" + "ss" * 40) is None
