r"""The backup scan's file selection against duplicity's own ``Select``, on random trees with
random selection options: shell globs (``*``, ``**``, ``?``, classes, trailing ``/``, include
and exclude), regular expressions (``--include-regexp``/``--exclude-regexp`` and
``--filter-regexp``), literal strings (``--filter-literal``), ``--exclude-if-present``,
``--exclude-device-files`` and ``--exclude-older-than``, each also case-insensitive
(``ignorecase:`` globs, ``--filter-ignorecase``; names where Python's case rules differ from
plain ASCII: K and the Kelvin sign, s and ſ, İ and ı, ß and ẞ). Where the engine takes the selection
functions it must select exactly the paths duplicity's ``Select`` yields, in the same order;
``--files-from`` lists (paths of the tree, parents and children, names that do not exist) go
with them. Options it must leave to duplicity (regular expressions with ``\d``, lookarounds,
scoped inline flags and the like, undecodable bytes in a pattern or a case-insensitive
literal) must be refused. In this process with
duplicity 3.2.1, and as a script (``tests/selection_cases.py``) in the venvs of duplicity 3.0.7,
2.2.4 and 2.1.5."""

from __future__ import annotations

import os
import subprocess

import pytest
from selection_cases import COMPARED_RULES, run_cases

CASES = int(os.environ.get("DUPCORE_SELECTION_CASES", "400"))


def test_random_trees_and_rules_select_as_duplicity(tmp_path):
    COMPARED_RULES.clear()
    assert run_cases(str(tmp_path), CASES, "3.2.x") > CASES // 2
    assert COMPARED_RULES["regexp"] >= CASES // 10, COMPARED_RULES
    literals = COMPARED_RULES["literal"] + COMPARED_RULES["ignorecase_literal"]
    assert literals >= CASES // 60, COMPARED_RULES
    assert COMPARED_RULES["ignorecase_literal"] >= CASES // 100, COMPARED_RULES
    assert COMPARED_RULES["files_from"] >= CASES // 10, COMPARED_RULES
    assert COMPARED_RULES["ignorecase"] >= CASES // 20, COMPARED_RULES


@pytest.mark.versions
@pytest.mark.parametrize(("version", "line"), [("3.0.7", "3.0.x"), ("2.2.4", "2.2.x"),
                                             ("2.1.5", "2.1.x")])
def test_older_lines_select_as_duplicity(tmp_path, version, line):
    from test_e2e_versions import pypi_venv

    python = pypi_venv(version) / "bin" / "python"
    script = os.path.join(os.path.dirname(__file__), "selection_cases.py")
    proc = subprocess.run([python, script, tmp_path, "300", line], capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) > 150
    kinds = dict(kv.split("=") for kv in proc.stdout.splitlines()[-2].split())
    casefolded = int(kinds.get("ignorecase_literal", 0))
    assert int(kinds["regexp"]) >= 20 and int(kinds.get("literal", 0)) + casefolded >= 5, kinds
    assert casefolded >= 3, kinds
    assert int(kinds["files_from"]) >= 20 and int(kinds["ignorecase"]) >= 10, kinds

