"""images.lock, checked before it is used: its shape (a foreign or corrupt file is one line with
a key path, never an attribute error) and the grammar of every value that reaches a Dockerfile
(sha256s, digests, URLs, versions, image references)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestrator.config import grammar
from orchestrator.config.grammar import Problem
from orchestrator.config.yamlsafe import Lines, Path_, Problems, fmt
from orchestrator.errors import ConfigError

Check = Callable[[str, Path_], Problem]
Fields = dict[str, tuple[bool, "Check | Fields"]]
SECTIONS = ("schema_version", "pythons", "bases", "pyenv", "deadsnakes")


def _text(value: str, path: Path_) -> Problem:
    return grammar.control(value)


def _url(value: str, path: Path_) -> Problem:
    return grammar.url(value)


def _sha(value: str, path: Path_) -> Problem:
    return grammar.sha256(value)


def _fpr(value: str, path: Path_) -> Problem:
    return grammar.match(grammar.FINGERPRINT, value, "an OpenPGP fingerprint (40 hex digits)",
                         "regenerate it with `orchestrator lock`")


def _python_version(value: str, path: Path_) -> Problem:
    minor = str(path[1])
    if not re.fullmatch(r"3\.\d+\.\d+", value):
        return (f"{value!r} is not a CPython release", 'it looks like "3.13.5"')
    if not value.startswith(minor + "."):
        return (f"{value} is not a {minor} release", f"lock a {minor}.x version")
    return None


def _tarball(value: str, path: Path_) -> Problem:
    return _url(value, path) or (None if re.search(r"/Python-[0-9.]+\.(tar\.xz|tgz)$", value) else (
        f"{value!r} is not a CPython source tarball URL", "it ends in /Python-X.Y.Z.tar.xz or .tgz"))


def _image(value: str, path: Path_) -> Problem:
    if "@" in value:
        return (f"{value!r} holds a digest", "keep the reference in image and the sha256:... in digest")
    return grammar.image_ref(value)


def _digest(value: str, path: Path_) -> Problem:
    return grammar.digest(value)


def _version(value: str, path: Path_) -> Problem:
    return grammar.match(grammar.VERSION, value, "a version", 'write it like "2.6.30"')


def _ppa(value: str, path: Path_) -> Problem:
    return grammar.match(grammar.PPA, value, "a Launchpad PPA", 'it looks like "deadsnakes/ppa"')


KEY: Fields = {"fingerprint": (True, _fpr), "url": (True, _url), "sha256": (False, _sha)}
PYTHON: Fields = {"version": (True, _python_version), "url": (True, _tarball), "sha256": (True, _sha),
                  "signature_url": (False, _url), "signing_key": (False, KEY),
                  "resolved_from": (False, _text)}
BASE: Fields = {"image": (True, _image), "digest": (False, _digest)}
PYENV: Fields = {"version": (True, _version), "url": (True, _url), "sha256": (False, _sha)}
DEADSNAKES: Fields = {"ppa": (True, _ppa), "fingerprint": (True, _fpr), "key_url": (True, _url)}


class _Checker:
    def __init__(self, file: str, lines: Lines) -> None:
        self.lines = lines
        self.report = Problems(file, lines)

    def fix(self, path: Path_) -> str:
        entry = fmt(path[:2]) if path[0] in ("pythons", "bases") else fmt(path[:1])
        return f"remove {entry} from the lock and run `orchestrator lock` (it fills in what is missing)"

    def fields(self, data: Any, path: Path_, fields: Fields) -> None:
        if not isinstance(data, dict):
            self.report(path, f"expected a mapping, found {_kind(data)}", self.fix(path))
            return
        for key in data:
            if key not in fields:
                self.report(path + (key,), "unknown key", self.fix(path))
        for key, (required, check) in fields.items():
            value, kpath = data.get(key), path + (key,)
            if isinstance(check, dict):
                if value is not None:
                    self.fields(value, kpath, check)
                continue
            if not isinstance(value, str) and value is not None and not isinstance(value, bool):
                value = data[key] = self.lines.scalars.get(kpath, ("", str(value)))[1]  # 1313... -> text
            if value is None:
                if required:
                    self.report(kpath, "required key is missing", self.fix(path))
            elif not isinstance(value, str):
                self.report(kpath, f"expected a string, found {_kind(value)}", self.fix(path))
            else:
                bad = check(value, kpath)
                if bad:
                    self.report(kpath, bad[0], self.fix(path))

    def table(self, data: dict[str, Any], section: str, fields: Fields,
              keys: Callable[[str], Problem]) -> None:
        value = data.get(section)
        if value is None:
            return
        if not isinstance(value, dict):
            self.report((section,), f"expected a mapping, found {_kind(value)}", self.fix((section,)))
            return
        for name, entry in value.items():
            bad = keys(name)
            if bad:
                self.report((section, name), bad[0], self.fix((section, name)))
            else:
                self.fields(entry, (section, name), fields)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", int: "a number"}.get(type(value), "text")


def check(data: Any, lines: Lines, file: str) -> list[ConfigError]:
    """Every problem of a parsed images.lock (empty when it can be used)."""
    if data is None:
        return []
    regen = "move it aside and run `orchestrator lock`"
    if not isinstance(data, dict):
        return [ConfigError(file, "", f"expected a mapping at the top level, found {_kind(data)} "
                            "(not an images.lock?)", regen)]
    if data and not set(data) & set(SECTIONS):
        first = next(iter(data))
        return [ConfigError(file, first, "unknown key: this is not an images.lock (it has none of "
                            f"{', '.join(SECTIONS)})", regen, lines.get((first,)))]
    c = _Checker(file, lines)
    for key in data:
        if key not in SECTIONS:
            c.report((key,), "unknown key", f"remove it (images.lock has {', '.join(SECTIONS)})")
    if data.get("schema_version", 1) != 1:
        c.report(("schema_version",), f"schema_version {data['schema_version']!r} is not supported (1 is)",
              "regenerate the lock with this orchestrator (`orchestrator lock`)")
    c.table(data, "pythons", PYTHON, lambda k: None if re.fullmatch(r"3\.\d+", k) else (
        f'"{k}" is not a Python minor version', ""))
    c.table(data, "bases", BASE, lambda k: None if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", k) else (
        f'"{k}" is not a distro name', ""))
    for section, fields in (("pyenv", PYENV), ("deadsnakes", DEADSNAKES)):
        if data.get(section) is not None:
            c.fields(data[section], (section,), fields)
    return c.report.problems
