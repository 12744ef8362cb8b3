"""End-to-end benchmark: stock duplicity vs duplicity on dupcore, same corpus, interleaved runs.

Full, incremental, restore and verify, ``--no-encryption`` and symmetric, on a generated corpus
shaped like the project's baseline (about 1.4 GiB: database-like large files, medium files,
20k small files). Prints wall and CPU seconds and the ratios. Same as ``python -m dupcore bench``;
pass ``--size-mb``/``--small``/``--repeat``/``--variants`` to change the load.
"""

import sys

from dupcore.harness.demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], bench=True))
