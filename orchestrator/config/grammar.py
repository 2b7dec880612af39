"""Strict grammars for every value of images.yaml / images.lock that reaches a Dockerfile.

Each checker returns None when the value is fine, else ``(problem, fix)`` for a one-line
ConfigError. Values that pass cannot leave their word in the rendered Dockerfile: they hold no
whitespace, quotes, ``$``, backslashes or shell operators (the render filters quote them for
their context as well, as a second line of defence).
"""

from __future__ import annotations

import re
import string

Problem = tuple[str, str] | None

DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
ABS_PATH = re.compile(r"/(?:[A-Za-z0-9._+@-]+/?)*")
SHA256 = re.compile(r"[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
TAG_PART = re.compile(r"[A-Za-z0-9_.-]*")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*"
REGISTRY = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
# [registry/]repository[:tag][@digest]
IMAGE_REF = re.compile(
    rf"(?:{_HOST}(?::[0-9]{{1,5}})?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    rf"(?::{OCI_TAG.pattern})?(?:@{DIGEST.pattern})?"
)
# http(s) URLs whose characters are all literal in a Dockerfile and in a shell word.
URL = re.compile(rf"https?://{_HOST}(?::[0-9]{{1,5}})?(?:/[A-Za-z0-9._~%+@,=:/-]*)?"
                 r"(?:\?[A-Za-z0-9._~%+@,=:/&-]*)?")
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}")
PPA = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
RELEASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FINGERPRINT = re.compile(r"[0-9A-F]{40}")
# ${NAME}, $NAME: what the Dockerfile parser (ENV, LABEL) and the shell would expand.
EXPANSION = re.compile(r"\$(\{|[A-Za-z_(])")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def control(value: str) -> Problem:
    """Newlines, tabs and other control characters end or split a Dockerfile instruction."""
    m = CONTROL.search(value)
    if m:
        return (f"{value!r} contains a control character ({m.group()!r})",
                "remove it (newlines and tabs cannot be written into a Dockerfile value)")
    return None


def match(rx: re.Pattern[str], value: str, what: str, fix: str) -> Problem:
    if rx.fullmatch(value):
        return None
    return (f"{value!r} is not {what}", fix)


def deb_package(value: str) -> Problem:
    return match(DEB_PACKAGE, value, "a Debian package name",
                 "use lowercase letters, digits, '+', '-', '.' (e.g. libssl3)")


def env_key(value: str) -> Problem:
    return match(ENV_KEY, value, "an environment variable name",
                 "use letters, digits and '_', not starting with a digit (e.g. MY_VAR)")


def label_key(value: str) -> Problem:
    return match(LABEL_KEY, value, "a label key",
                 "use letters, digits, '.', '-' and '_' (e.g. org.example.team)")


def abs_path(value: str) -> Problem:
    if ABS_PATH.fullmatch(value) and "/../" not in value + "/":
        return None
    return (f"{value!r} is not a plain absolute path",
            "write it like /home/app (letters, digits, '.', '_', '-', '+', '@' and '/')")


def url(value: str, placeholders: tuple[str, ...] = ()) -> Problem:
    """An http(s) URL; ``placeholders`` are the {names} it may hold (filled in by the code)."""
    names, problem = template_names(value)
    if problem:
        return problem
    unknown = sorted(names - set(placeholders))
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in placeholders) or "none"
        return (f"unknown placeholder {{{unknown[0]}}}", f"placeholders allowed here: {allowed}")
    sample = value
    for p in placeholders:
        sample = sample.replace("{" + p + "}", "X")
    return match(URL, sample, "an http(s) URL",
                 "write it like https://host[:port]/path (no spaces, quotes, '$', ';', '`')")


def archive_url(value: str, placeholders: tuple[str, ...] = ()) -> Problem:
    """An apt archive's root URL: an http(s) URL without a query (apt and the rendered
    Dockerfile append dists/<suite>/... to it)."""
    problem = url(value, placeholders)
    if problem is None and "?" in value:
        return (f"{value!r} has a query", "write the archive's root, like "
                "https://ppa.launchpadcontent.net/{ppa}/ubuntu (apt appends dists/<suite>/...)")
    return problem


def template_names(template: str) -> tuple[set[str], Problem]:
    """The {names} of a str.format template; a problem for {0}, {x!r}, {x:d}, unbalanced braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return set(), (f"bad template: {exc}", "balance the braces ({{ and }} for literal ones)")
    names: set[str] = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if conversion or spec:
            text = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            return set(), (f"{text}: conversions and format specs are not supported",
                           f"write {{{name}}}")
        if not name.isidentifier():
            return set(), (f"{{{name}}} is not a placeholder name", "use a name like {version}")
        names.add(name)
    return names, None


def registry(value: str) -> Problem:
    if "://" in value:
        return (f"{value!r} has a scheme", f'write the host[:port] only, e.g. "{value.split("://", 1)[1]}"')
    if "/" in value:
        return (f"{value!r} has a path", f'write the host[:port] only, e.g. "{value.split("/", 1)[0]}"; '
                "the path belongs in publish.repository")
    return match(REGISTRY, value, "a registry host[:port]", 'e.g. "registry.example.org" or "127.0.0.1:5000"')


def registry_prefix(value: str) -> Problem:
    """host[:port] with an optional repository path prefix (a mirror), trailing "/" allowed."""
    host, _, rest = value.rstrip("/").partition("/")
    if "://" in value:
        return registry(value)
    bad = registry(host)
    if bad or not rest:
        return bad
    return repository(rest)


def repository(value: str) -> Problem:
    if value != value.lower() and REPOSITORY.fullmatch(value.lower()):
        return (f"{value!r} has uppercase letters", f'repositories are lowercase: write "{value.lower()}"')
    return match(REPOSITORY, value, "a repository path",
                 'use lowercase components separated by "/" (e.g. org/python)')


def image_ref(value: str) -> Problem:
    return match(IMAGE_REF, value, "an image reference", "write [registry/]repository[:tag][@sha256:...] "
                 "in lowercase, e.g. library/debian:bookworm-slim")


def oci_tag(value: str) -> Problem:
    if OCI_TAG.fullmatch(value):
        return None
    why = ("longer than 128 characters" if len(value) > 128 else
           "starts with '-' or '.'" if value[:1] in ("-", ".") else
           "empty" if not value else "has characters other than letters, digits, '_', '.', '-'")
    return (f'"{value}" is not a valid OCI tag ({why})',
            "tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def sha256(value: str) -> Problem:
    return match(SHA256, value, "a sha256 (64 lowercase hex digits)",
                 "regenerate it with `orchestrator lock`")


def digest(value: str) -> Problem:
    return match(DIGEST, value, "a digest (sha256: and 64 hex digits)",
                 "regenerate it with `orchestrator lock --upgrade`")


# ---- signing key references (images.yaml signing.key / public_key, cosign's --key)

# cosign's KMS schemes (sigstore/pkg/signature/kms): passed to cosign as they are.
KMS_SCHEMES = ("awskms", "gcpkms", "azurekms", "hashivault")


def scheme(ref: str) -> str:
    """'env', a KMS scheme, 'https' ... or '' for a file path."""
    head, sep, _ = ref.partition("://")
    return head if sep else ""


def is_file(ref: str) -> bool:
    return scheme(ref) == ""


def default_public_key(key: str) -> str | None:
    """What verify uses when public_key is not set: cosign.key -> cosign.pub; a KMS key
    verifies with itself; an env:// key has no public counterpart."""
    kind = scheme(key)
    if kind in KMS_SCHEMES:
        return key
    if kind == "" and key.endswith(".key"):
        return key.removesuffix(".key") + ".pub"
    return None
