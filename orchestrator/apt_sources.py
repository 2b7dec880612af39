"""The apt sources an image lists, as apt reads them: one-line `.list` files and deb822
`.sources` files. Read inside the image at label time, kept in a label (JSON), so that
`orchestrator outdated` knows, without pulling a layer, which archives feed each image."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass

# What the label-time script prints before each file: "##FILE <path>"
FILE_MARK = "##FILE "


@dataclass(frozen=True)
class AptSource:
    uri: str  # http://deb.debian.org/debian (no trailing slash)
    suite: str  # bookworm-security; a flat repository's directory ends in "/" ("./")
    components: tuple[str, ...] = ()  # () for a flat repository
    signed_by: str = ""  # keyring path in the image ("": apt's trusted.gpg.d / the distro's)
    trusted: bool = False  # [trusted=yes]: apt checks no signature, neither do we

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


def parse_deb822(text: str) -> list[AptSource]:
    """deb822 stanzas (Types/URIs/Suites/Components/Signed-By/Trusted/Enabled)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:  # continuation (e.g. an inline keyring)
                fields[key] += "\n" + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        signed = fields.get("signed-by", "")
        if "\n" in signed:  # an embedded key block: apt's own; we cannot resolve it by path
            signed = "inline"
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                comps = tuple(fields.get("components", "").split())
                out.append(AptSource(uri.rstrip("/"), suite, comps, signed,
                                     fields.get("trusted", "") == "yes"))
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
    return json.dumps([asdict(s) for s in sources], separators=(",", ":"))


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
                             str(d.get("signed_by", "")), bool(d.get("trusted", False))))
    return out
