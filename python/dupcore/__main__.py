"""Command line: ``python -m dupcore status|selftest|demo|bench``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: python -m dupcore COMMAND [options]

commands:
  status     show whether and how dupcore runs inside this interpreter's duplicity
  selftest   real backup + restore round trips with the installed duplicity (exit code tells)
  demo       generate a sample tree; time backup/restore/verify with stock duplicity and dupcore
  bench      the same comparison on a larger corpus, interleaved runs (see --help)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the sub-command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "status":
        from dupcore import status

        return status.main(rest)
    if cmd == "selftest":
        from dupcore.harness import selftest

        return selftest.main(rest)
    if cmd in ("demo", "bench"):
        from dupcore.harness import demo

        return demo.main(rest, bench=(cmd == "bench"))
    sys.stderr.write(f"unknown command {cmd!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
