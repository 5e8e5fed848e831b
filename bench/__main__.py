"""`python3 -m bench`: the benchmark runner (see bench/README section in the project README).

Run from the repository root with any Python 3.11+: it builds or updates `.venv` as
`python3 dev.py` does, then runs itself with the venv's interpreter.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()


if __name__ == "__main__":
    if not _in_venv():
        sys.path.insert(0, str(ROOT))
        import dev  # the project's own venv builder (dev.py)

        dev.ensure_venv()
        os.chdir(ROOT)
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), "-m", "bench", *sys.argv[1:]])
    from .runner import main

    sys.exit(main(sys.argv[1:]))
