"""Built-in table of end-of-life dates and CPython release signing keys.

Sources (checked 2026-11): CPython https://devguide.python.org/versions/ (PEP 602: five years
of support, EOL in October); release manager keys https://www.python.org/downloads/ (OpenPGP
section; PEP 761: from 3.14 on releases are signed with Sigstore only, no .asc);
Debian https://wiki.debian.org/LTS (end of LTS); Ubuntu https://ubuntu.com/about/release-cycle
(end of standard support).
"""

from __future__ import annotations

import datetime as dt

WARN_DAYS = 90

PYTHON_EOL: dict[str, dt.date] = {
    "3.8": dt.date(2024, 10, 7),
    "3.9": dt.date(2025, 10, 31),
    "3.10": dt.date(2026, 10, 31),
    "3.11": dt.date(2027, 10, 31),
    "3.12": dt.date(2028, 10, 31),
    "3.13": dt.date(2029, 10, 31),
    "3.14": dt.date(2030, 10, 31),
    "3.15": dt.date(2031, 10, 31),
}

# Release manager OpenPGP keys (full fingerprints); None: Sigstore only.
PYTHON_SIGNING_KEY: dict[str, str | None] = {
    "3.8": "E3FF2839C048B25C084DEBE9B26995E310250568",
    "3.9": "E3FF2839C048B25C084DEBE9B26995E310250568",
    "3.10": "A035C8C19219BA821ECEA86B64E628F8D684696D",
    "3.11": "A035C8C19219BA821ECEA86B64E628F8D684696D",
    "3.12": "7169605F62C751356D054A26A821E680E5FA6305",
    "3.13": "7169605F62C751356D054A26A821E680E5FA6305",
    "3.14": None,
    "3.15": None,
}

# The first minor whose releases python.org signs with Sigstore only (PEP 761): no .asc.
SIGSTORE_ONLY_FROM = (3, 14)


def pgp_signed(minor: str) -> bool:
    """CPython ``minor``'s source releases carry an OpenPGP signature (.asc): before 3.14."""
    return tuple(int(x) for x in minor.split(".")[:2]) < SIGSTORE_ONLY_FROM


DISTRO_EOL: dict[str, dt.date] = {
    "bullseye": dt.date(2026, 8, 31),
    "bookworm": dt.date(2028, 6, 30),
    "trixie": dt.date(2030, 6, 30),
    "jammy": dt.date(2027, 5, 31),
    "noble": dt.date(2029, 5, 31),
}


def python_eol(minor: str) -> dt.date | None:
    return PYTHON_EOL.get(minor)


def days_left(eol: dt.date | None, today: dt.date) -> int | None:
    return None if eol is None else (eol - today).days
