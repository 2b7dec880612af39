"""``python -m hostkit`` (from the repository root)."""

import sys

try:
    from hostkit.cli import main
except ImportError as exc:  # the venv lacks the package: one line, no traceback
    print(f"[provision] ERROR: {exc} ({sys.executable}): run `make install` (the orchestrator "
          "package, editable, with its dev tools)", file=sys.stderr)
    raise SystemExit(3) from None

raise SystemExit(main())
