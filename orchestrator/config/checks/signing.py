"""Semantic checks of images.yaml's ``signing:`` section (one line per problem, collected with
the other semantic checks); how a key reference is read (file, env://, KMS URI) is
grammar's.

Key files are not looked for here: a private key is written from a CI secret at push time
(signing.py says when it is missing), and verify says when the public key is.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from orchestrator.config import grammar
from orchestrator.config.grammar import KMS_SCHEMES, Problem, default_public_key, scheme
from orchestrator.config.model import ImagesConfig
from orchestrator.config.yamlsafe import Path_, Problems

KEY_FIX = ("write a file path relative to images.yaml (e.g. cosign.key), env://VAR or a KMS URI "
           "(" + ", ".join(f"{s}://" for s in KMS_SCHEMES) + ")")


def _reference(value: str, *, public: bool) -> Problem:
    """A problem with a key reference (problem, fix), or None."""
    bad = grammar.control(value)
    if bad:
        return bad
    if not value.strip():
        return ("the value is empty", KEY_FIX)
    if value != value.strip():
        return (f"{value!r} has leading or trailing blanks", "remove them")
    kind, _, rest = value.partition("://")
    if not scheme(value):
        if not public and value.endswith(".pub"):
            return (f"{value} is a public key", "signing.key takes the private key (e.g. "
                    "cosign.key); put the .pub file in signing.public_key")
        if PurePosixPath(value).name in ("", ".", ".."):
            return (f"{value!r} is not a file", KEY_FIX)
        return None
    if kind == "env":
        if not grammar.ENV_KEY.fullmatch(rest):
            return (f"{value!r}: {rest!r} is not an environment variable name",
                    "write env://NAME, e.g. env://COSIGN_PRIVATE_KEY")
        return None
    if kind in KMS_SCHEMES:
        if not rest or any(c.isspace() for c in rest):
            return (f"{value!r} names no key", f"write {kind}://<key>, as cosign documents it")
        return None
    if public and kind == "https":
        return grammar.url(value)
    allowed = "env://, " + ", ".join(f"{s}://" for s in KMS_SCHEMES) + (", https://" if public else "")
    return (f"{kind}:// is not a key reference the orchestrator passes to cosign",
            f"use a file path or one of {allowed}")


def check(config: ImagesConfig, report: Problems) -> None:
    signing = config.signing
    if signing is None:
        return
    base: Path_ = ("signing",)
    problem = _reference(signing.key, public=False)
    if problem:
        report(base + ("key",), *problem)
    if signing.public_key is not None:
        problem = _reference(signing.public_key, public=True)
        if problem:
            report(base + ("public_key",), *problem)
    elif not problem and default_public_key(signing.key) is None:
        why = ("an env:// key gives cosign no public key to verify with" if scheme(signing.key) == "env"
               else f"{signing.key} does not end in .key, so no .pub file is implied")
        report(base + ("public_key",), f"required here: {why}",
               "add public_key: the committed cosign.pub (or env://VAR, a KMS URI, an https:// URL)")
    bad = grammar.env_key(signing.password_env)
    if bad:
        report(base + ("password_env",), *bad)
