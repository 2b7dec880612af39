"""The apt sources an image lists, as apt reads them: one-line `.list` files and deb822
`.sources` files. Read inside the image at label time, kept in a label (JSON), so that
`orchestrator outdated` knows, without pulling a layer, which archives feed each image."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass

from debian.deb822 import Deb822

# What the label-time script prints before each file: "##FILE <path>"
FILE_MARK = "##FILE "


@dataclass(frozen=True)
class AptSource:
    uri: str  # http://deb.debian.org/debian (no trailing slash)
    suite: str  # bookworm-security; a flat repository's directory ends in "/" ("./")
    components: tuple[str, ...] = ()  # () for a flat repository
    # keyring path(s) in the image, comma-separated ("": apt's trusted.gpg.d / the distro's);
    # "inline" when the stanza carries the key itself (then in signed_by_key)
    signed_by: str = ""
    trusted: bool = False  # [trusted=yes]: apt checks no signature, neither do we
    signed_by_key: str = ""  # an inline Signed-By key block (armored), as apt would read it

    @property
    def flat(self) -> bool:
        return self.suite.endswith("/")

    def describe(self) -> str:
        comps = " ".join(self.components)
        return f"{self.uri} {self.suite}{' ' + comps if comps else ''}"


def _options(text: str) -> dict[str, str]:
    out = {}
    for item in text.split():
        key, _, value = item.partition("=")
        out[key.strip().lower()] = value.strip()
    return out


def parse_one_line(text: str) -> list[AptSource]:
    """`deb [opts] URI SUITE [COMPONENT...]` lines (deb-src and comments ignored)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        rest = line[3:].strip()
        opts: dict[str, str] = {}
        m = re.match(r"\[([^\]]*)\]\s*", rest)
        if m:
            opts, rest = _options(m.group(1)), rest[m.end():]
        words = shlex.split(rest)
        if len(words) < 2:
            continue
        out.append(AptSource(words[0].rstrip("/"), words[1], tuple(words[2:]),
                             opts.get("signed-by", ""), opts.get("trusted", "") == "yes"))
    return out


# apt's StringToBool
_TRUE = frozenset({"yes", "true", "with", "on", "enable", "1"})
_FALSE = frozenset({"no", "false", "without", "off", "disable", "0"})
_KEY_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


def _signed_by(value: str) -> tuple[str, str]:
    """(signed_by, signed_by_key) of a deb822 Signed-By value: keyring paths or fingerprints
    (spaces or commas between them, on the first line or continuation lines), or an inline
    armored key block (continuation lines; a line of one "." is an empty line)."""
    lines = [line.strip() for line in value.splitlines()]
    if _KEY_BLOCK in lines:
        block = "\n".join("" if line == "." else line for line in lines).strip()
        return "inline", block + "\n"
    return ",".join(w for w in re.split(r"[\s,]+", value) if w), ""


def parse_deb822(text: str) -> list[AptSource]:
    """deb822 stanzas as apt reads them (python-debian's parser: comments, continuation
    lines): Types/URIs/Suites/Components (several of each), Signed-By, Trusted, Enabled."""
    out = []
    for para in Deb822.iter_paragraphs(text.splitlines(), use_apt_pkg=False):
        if "deb" not in para.get("Types", "").split() \
                or para.get("Enabled", "yes").strip().lower() in _FALSE:
            continue
        signed, key = _signed_by(para.get("Signed-By", ""))
        trusted = para.get("Trusted", "").strip().lower() in _TRUE
        comps = tuple(para.get("Components", "").split())
        for uri in para.get("URIs", "").split():
            for suite in para.get("Suites", "").split():
                out.append(AptSource(uri.rstrip("/"), suite, comps, signed, trusted, key))
    return out


def parse_dump(text: str) -> list[AptSource]:
    """The label-time dump: "##FILE <path>" then the file, for every sources file."""
    out: list[AptSource] = []
    for chunk in text.split(FILE_MARK)[1:]:
        path, _, body = chunk.partition("\n")
        path = path.strip()
        if path.endswith(".sources"):
            out += parse_deb822(body)
        elif path.endswith(".list"):
            out += parse_one_line(body)
    seen: list[AptSource] = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return seen


# The shell the label step runs in the image (POSIX sh, no tool beyond cat).
DUMP_SCRIPT = (
    "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list "
    "/etc/apt/sources.list.d/*.sources; do "
    f"[ -f \"$f\" ] && {{ echo \"{FILE_MARK}$f\"; cat \"$f\"; echo; }}; done; true"
)


def to_label(sources: list[AptSource]) -> str:
    """JSON; an empty signed_by_key is left out (labels stay as they were without one)."""
    rows = [{k: v for k, v in asdict(s).items() if k != "signed_by_key" or v} for s in sources]
    return json.dumps(rows, separators=(",", ":"))


def from_label(text: str) -> list[AptSource]:
    """The label's sources; ValueError when it is not what to_label wrote."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("not a list")  # noqa: TRY004 - one error type for a bad label
    out = []
    for d in data:
        if not isinstance(d, dict) or not isinstance(d.get("uri"), str) \
                or not isinstance(d.get("suite"), str):
            raise ValueError(f"bad source entry {d!r}")  # noqa: TRY004
        out.append(AptSource(d["uri"], d["suite"], tuple(str(c) for c in d.get("components", [])),
                             str(d.get("signed_by", "")), bool(d.get("trusted", False)),
                             str(d.get("signed_by_key", ""))))
    return out
