"""Python's case-insensitive regular expressions rewritten as case-sensitive ones that match
the same strings, for the engine's selection (``ignorecase:`` globs, ``--filter-ignorecase``).

Python's ``re`` with ``IGNORECASE`` on a ``str`` pattern compares the *simple lowercase* of
each character of the name (``_sre.unicode_tolower``) with the lowercase of the pattern's
character, and adds the few characters of its equivalence table (``i``/``ı``, ``s``/``ſ``,
``µ``/``μ``, …). The regex crate folds case its own way (full case folding of a Unicode
version of its own), so the engine cannot take the flag as it is. Here every cased literal
becomes the class of exactly the characters Python would take for it, computed with Python's
own tables, and every class the same; the result is handed to the engine without the flag.
A pattern this does not cover (categories like ``\\w``, non-BMP characters in classes,
lookarounds, inline flags) returns None and duplicity's own selection keeps running.

Case-insensitive literal strings (``--filter-literal`` with ``--filter-ignorecase``) are
compared by duplicity after ``str.casefold()`` of both sides, a per-character full case folding
that may change the length (``ß`` → ``ss``). :func:`literal_patterns` writes them as the two
expressions of a glob rule: the names whose casefold is the literal or lies below it, and the
names whose casefold is one of its parent directories.
"""

from __future__ import annotations

import _sre
import functools
import re

try:  # Python 3.11+
    from re import _constants as _c
    from re import _parser as _p
    from re._casefix import _EXTRA_CASES as _FIXES
except ImportError:  # Python 3.9, 3.10
    import sre_compile as _sre_compile
    import sre_constants as _c
    import sre_parse as _p

    _FIXES = _sre_compile._ignorecase_fixes

_FLAGS = re.IGNORECASE | re.DOTALL | re.UNICODE
_ANCHORS = {_c.AT_BEGINNING: "^", _c.AT_BEGINNING_STRING: "\\A", _c.AT_END: "$",
            _c.AT_END_STRING: "\\Z"}
# Largest counted repetition the engine's translation takes.
_MAX_COUNT = 9999
_SURROGATES = range(0xD800, 0xE000)


@functools.lru_cache(maxsize=1)
def _lowered_from() -> dict[int, tuple[int, ...]]:
    """For each lowercase L, the other code points whose simple lowercase is L."""
    out: dict[int, list[int]] = {}
    tolower = _sre.unicode_tolower
    for cp in range(0x110000):
        lo = tolower(cp)
        if lo != cp:
            out.setdefault(lo, []).append(cp)
    return {k: tuple(v) for k, v in out.items()}


def _matching(lowered: set[int]) -> set[int]:
    """Every code point whose simple lowercase is in ``lowered``."""
    inverse = _lowered_from()
    tolower = _sre.unicode_tolower
    out = {m for m in lowered if tolower(m) == m}
    for m in lowered:
        out.update(inverse.get(m, ()))
    return out


def _with_fixes(lo: int, into: set[int]) -> None:
    into.add(lo)
    into.update(_FIXES.get(lo, ()))


# Characters written with a backslash: the syntax characters, in and out of classes (only
# these: the engine's translation reads a backslash before a letter as a class like \\w).
_SPECIAL = frozenset("\\^$.|?*+()[]{}-")


def _escape(cp: int) -> str:
    ch = chr(cp)
    return "\\" + ch if ch in _SPECIAL else ch


def _class(points: set[int], negate: bool, astral: bool = False) -> str | None:
    """A class of ``points`` in Python's syntax, as ranges (beyond the BMP with ``astral``)."""
    if any(p in _SURROGATES or (p > 0xFFFF and not astral) for p in points) or not points:
        return None
    ordered = sorted(points)
    parts, start, prev = [], ordered[0], ordered[0]
    for p in ordered[1:] + [None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        parts.append(_escape(start) if start == prev
                     else f"{_escape(start)}-{_escape(prev)}")
        if p is not None:
            start = prev = p
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _literal(cp: int, negate: bool) -> str | None:
    """A literal (or ``[^c]``) as ``_compile`` matches it under IGNORECASE."""
    if not _sre.unicode_iscased(cp):
        return _class({cp}, True) if negate else _escape(cp)
    lowered: set[int] = set()
    _with_fixes(_sre.unicode_tolower(cp), lowered)
    return _class(_matching(lowered), negate)


def _in(items) -> str | None:
    """A class as ``_optimize_charset`` and ``IN_UNI_IGNORE`` match it."""
    negate, lowered, cased, plain = False, set(), False, set()
    tolower, iscased = _sre.unicode_tolower, _sre.unicode_iscased
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            if av > 0xFFFF:
                return None
            plain.add(av)
            _with_fixes(tolower(av), lowered)
            cased = cased or iscased(av)
        elif op is _c.RANGE:
            lo, hi = av
            if hi > 0xFFFF:
                return None
            for cp in range(lo, hi + 1):
                plain.add(cp)
                _with_fixes(tolower(cp), lowered)
                cased = cased or iscased(cp)
        else:
            return None  # categories (\d, \w, \s)
    return _class(_matching(lowered) if cased else plain, negate)


def _repeat(op, av) -> str | None:
    lo, hi, body = av
    inner = _sequence(body)
    if inner is None or lo > _MAX_COUNT or (hi != _c.MAXREPEAT and hi > _MAX_COUNT):
        return None
    if (lo, hi) == (0, _c.MAXREPEAT):
        count = "*"
    elif (lo, hi) == (1, _c.MAXREPEAT):
        count = "+"
    elif (lo, hi) == (0, 1):
        count = "?"
    elif hi == _c.MAXREPEAT:
        count = f"{{{lo},}}"
    else:
        count = f"{{{lo},{hi}}}"
    return f"(?:{inner}){count}{'?' if op is _c.MIN_REPEAT else ''}"


def _item(op, av) -> str | None:
    if op is _c.LITERAL or op is _c.NOT_LITERAL:
        return _literal(av, op is _c.NOT_LITERAL)
    if op is _c.IN:
        return _in(av)
    if op is _c.ANY:
        return "."
    if op is _c.AT:
        return _ANCHORS.get(av)
    if op is _c.MAX_REPEAT or op is _c.MIN_REPEAT:
        return _repeat(op, av)
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, body = av
        inner = None if add_flags or del_flags else _sequence(body)
        return None if inner is None else f"({inner})"
    if op is _c.BRANCH:
        alternatives = [_sequence(b) for b in av[1]]
        return None if None in alternatives else "(?:" + "|".join(alternatives) + ")"
    return None  # lookarounds, group references, possessive and atomic groups, …


def _sequence(items) -> str | None:
    out = []
    for op, av in items:
        piece = _item(op, av)
        if piece is None:
            return None
        out.append(piece)
    return "".join(out)


def case_sensitive(pattern: str, flags: int) -> tuple[str, int] | None:
    """``(pattern, flags)`` of an IGNORECASE expression as an equivalent case-sensitive one,
    or None when the rewrite does not cover it."""
    if not isinstance(pattern, str) or flags & ~_FLAGS or not flags & re.UNICODE:
        return None
    try:
        parsed = _p.parse(pattern, flags)
    except (re.error, RecursionError):
        return None
    if parsed.state.flags & ~_FLAGS or any(ord(c) in _SURROGATES for c in pattern):
        return None
    out = _sequence(parsed)
    if out is None:
        return None
    return out, flags & ~re.IGNORECASE


# The longest expression written for a case-insensitive literal string; a longer one (many
# overlapping multi-character folds) is left to duplicity.
_MAX_LITERAL_PATTERN = 50_000
# The most slashes of a case-insensitive literal string the rewrite takes: its parents nest
# one group each, and the regex crate refuses expressions nested 250 deep (the engine's
# translation adds levels: about 85 slashes are its limit).
_MAX_LITERAL_DEPTH = 64


@functools.lru_cache(maxsize=1)
def _folded_from() -> dict[str, tuple[int, ...]]:
    """For each casefold F of some other character, the characters whose casefold is F."""
    out: dict[str, list[int]] = {}
    for block in range(0, 0x110000, 256):
        points = [cp for cp in range(block, block + 256) if cp not in _SURROGATES]
        text = "".join(map(chr, points))
        if text.casefold() == text:
            continue  # most blocks: nothing folds
        for cp in points:
            f = chr(cp).casefold()
            if f != chr(cp):
                out.setdefault(f, []).append(cp)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _longest_fold() -> int:
    """The length of the longest casefold of one character."""
    return max(len(k) for k in _folded_from())


def _chars_folding_to(text: str) -> tuple[int, ...]:
    """The characters whose casefold is ``text``."""
    others = _folded_from().get(text, ())
    if len(text) == 1 and ord(text) not in _SURROGATES and text.casefold() == text:
        return (ord(text), *others)
    return others


def _folding_to(text: str) -> str | None:
    """The expression of the names whose casefold is ``text``, or None (no name has it, or the
    expression would be too long). Built from the end: ``rest[i]`` matches the names whose
    casefold is ``text[i:]`` (None: no name)."""
    longest = _longest_fold()
    rest: list[str | None] = [None] * len(text) + [""]
    for i in range(len(text) - 1, -1, -1):
        options = []
        for k in range(1, min(longest, len(text) - i) + 1):
            chars = _chars_folding_to(text[i:i + k]) if rest[i + k] is not None else ()
            if chars:
                cls = _class(set(chars), False, astral=True)
                if cls is None:
                    return None
                options.append(cls + rest[i + k])
        if len(options) > 1:
            rest[i] = "(?:" + "|".join(options) + ")"
        elif options:
            rest[i] = options[0]
        if rest[i] is not None and len(rest[i]) > _MAX_LITERAL_PATTERN:
            return None
    return rest[0]


def literal_patterns(lit: str) -> tuple[str, str] | None:
    """A case-insensitive literal string as ``select_fn_from_literal``'s function holds it
    (its trailing ``/`` cut, casefolded) as the (matches, scan) expressions of a glob rule: a
    name whose casefold is the literal or lies below it, and a name whose casefold is a parent
    directory of it. None where the rewrite does not cover it (undecodable bytes too: no
    character folds to a lone surrogate).

    Only ``/`` folds to ``/``, and no casefold holds one, so the literal is matched part by
    part between its slashes, and its parents nest: ``^P0(?:/P1(?:/P2)?)?\\Z``."""
    if not isinstance(lit, str) or "/" not in lit:
        return None
    if lit.count("/") > _MAX_LITERAL_DEPTH:
        return None
    parts = [_folding_to(p) for p in lit.split("/")]
    if None in parts or sum(map(len, parts)) > _MAX_LITERAL_PATTERN:
        return None
    parents = ""
    for part in reversed(parts[1:-1]):
        parents = "(?:/" + part + parents + ")?"
    return "^" + "/".join(parts) + "(?:\\Z|/)", "^" + parts[0] + parents + "\\Z"
