"""utf-8 (minimal): no C.UTF-8 locale files, yet every encoding is UTF-8 (CPython's UTF-8 mode,
PEP 540)."""

import locale
import sys

enc = (sys.getfilesystemencoding(), sys.stdout.encoding, locale.getpreferredencoding(False))
sys.exit(0 if all(e.lower().replace("-", "") == "utf8" for e in enc) else f"encodings {enc}")
