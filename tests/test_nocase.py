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
