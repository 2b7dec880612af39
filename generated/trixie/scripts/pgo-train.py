"""CPython's PGO training run, with its outcome kept (PROFILE_TASK of a profile-guided compile).

The compile sets ``make PROFILE_TASK=/usr/src/scripts/pgo-train.py`` and ORCH_PGO_STATUS to a
file; CPython's Makefile then runs ``./python /usr/src/scripts/pgo-train.py`` in the build tree
with the profiling build. This runs what the Makefile's default task runs, ``-m test --pgo
--timeout=1200`` (the regression tests libregrtest picks for PGO), and writes the exit status to
ORCH_PGO_STATUS before exiting with it. The Makefile ignores the status (``|| true``), so without
this a training run that failed half-way left a partial profile, and gcc compiled every function
the training never reached as cold code: pgo-check.sh reads the file after the compile.

Arguments, if any, replace ``--pgo --timeout=1200`` (libregrtest's own options).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

DEFAULT_ARGS = ["--pgo", "--timeout=1200"]


def exit_status(code: object) -> int:
    """The process exit status SystemExit(code) gives (None: 0, an int: itself, else 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def main() -> int:
    status_file = os.environ.get("ORCH_PGO_STATUS")
    if not status_file:
        print("pgo-train.py: ORCH_PGO_STATUS is not set (the file the exit status goes to)",
              file=sys.stderr)
        return 2
    sys.argv = [sys.argv[0], *(sys.argv[1:] or DEFAULT_ARGS)]
    status = 1  # an exception other than SystemExit: the training did not finish
    try:
        runpy.run_module("test", run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exc:
        status = exit_status(exc.code)
    finally:
        Path(status_file).write_text(f"{status}\n", encoding="ascii")
    return status


if __name__ == "__main__":
    sys.exit(main())
