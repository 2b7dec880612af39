"""new-in-3.14 (every 3.14 image): what 3.14 adds works here: compression.zstd (PEP 784: the
_zstd extension, linked at build time against libzstd, finds the runtime library and
round-trips), annotationlib (PEP 649/749: deferred annotations, read as FORWARDREF), and the
modules of the new REPL (_pyrepl) import."""

import importlib
import sys

zstd = importlib.import_module("compression.zstd")  # mypy reads the stdlib as 3.11
annotationlib = importlib.import_module("annotationlib")

data = b"orchestrator smoke test " * 64
packed = zstd.compress(data)
assert zstd.decompress(packed) == data and len(packed) < len(data), "zstd round trip"


def f(x: "NotDefinedAnywhere") -> None:  # type: ignore[name-defined]  # noqa: F821
    """An annotation that cannot be evaluated: 3.14 defers it, FORWARDREF reads it."""


ann = annotationlib.get_annotations(f, format=annotationlib.Format.FORWARDREF)
assert "x" in ann, ann
for m in ("_pyrepl.main", "_pyrepl.readline", "_pyrepl.reader", "_pyrepl.unix_console",
          "_pyrepl.simple_interact"):
    importlib.import_module(m)
print("3.14:", "zstd", zstd.zstd_version_info, "annotationlib ok", "_pyrepl ok", sys.version)
