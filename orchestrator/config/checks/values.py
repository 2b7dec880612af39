"""Every images.yaml value that reaches a Dockerfile, checked against its grammar (grammar.py).

Runs on the validated model; returns every problem found (one ConfigError each), so that a file
with three bad package names gets three lines, not one per run.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement

from orchestrator.config import grammar
from orchestrator.config.grammar import Problem
from orchestrator.config.yamlsafe import Path_, Problems
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from orchestrator.config.model import ImagesConfig, Loaded

ID_MAX = 2**31 - 1  # uid_t/gid_t as most tools read them (signed 32 bit)


def check(loaded: Loaded) -> list[ConfigError]:
    col = Problems(str(loaded.path), loaded.lines)
    c = loaded.config
    _publish_and_sources(col, c)
    _distros(col, c)
    _build_options(col, c)
    _user(col, c)
    _env_and_labels(col, c)
    _certificates(col, c)
    return col.problems


def _publish_and_sources(col: Problems, c: ImagesConfig) -> None:
    col.add(("publish", "registry"), grammar.registry(c.publish.registry))
    col.add(("publish", "repository"), grammar.repository(c.publish.repository))
    s = c.sources
    col.add(("sources", "python"), grammar.url(s.python))
    col.add(("sources", "python_keys"), grammar.url(s.python_keys, ("fingerprint",)))
    col.add(("sources", "pyenv", "version"), grammar.match(
        grammar.VERSION, s.pyenv.version, "a pyenv release", 'write it like "2.6.30"'))
    col.add(("sources", "pyenv", "url"), grammar.url(s.pyenv.url, ("version",)))
    col.add(("sources", "base_registry"), grammar.registry_prefix(s.base_registry))
    col.add(("sources", "pypi"), grammar.url(s.pypi))
    col.add(("sources", "deadsnakes", "ppa"), grammar.match(
        grammar.PPA, s.deadsnakes.ppa, "a Launchpad PPA", 'write it as owner/name, e.g. "deadsnakes/ppa"'))
    col.add(("sources", "deadsnakes", "key_url"), grammar.url(s.deadsnakes.key_url, ("fingerprint",)))
    col.add(("sources", "deadsnakes", "archive"), grammar.archive_url(s.deadsnakes.archive, ("ppa",)))


def _distros(col: Problems, c: ImagesConfig) -> None:
    for name, d in c.distros.items():
        dp: Path_ = ("distros", name)
        col.add(dp + ("release",), grammar.match(grammar.RELEASE, d.release, "a release number",
                                                 'write it like "12" or "24.04"'))
        col.add(dp + ("image",), grammar.image_ref(d.image))
        if d.system_python is not None:
            col.add(dp + ("system_python",), grammar.match(
                grammar.VERSION, d.system_python, "a Python minor version", 'write it like "3.12"'))
        pk = d.packages
        for kind, names in (("runtime", pk.runtime), ("build", pk.build), ("dev", pk.dev)):
            col.each(dp + ("packages", kind), names, grammar.deb_package)
        for minor, names in pk.runtime_for_python.items():
            col.each(dp + ("packages", "runtime_for_python", minor), names, grammar.deb_package)


def _configure_opt(value: str) -> Problem:
    return grammar.control(value)


def _cflags(value: str) -> Problem:
    if "$" in value or "`" in value:
        return (f"{value!r} contains '$' or '`'", "write the flags out: make and the shell would expand them")
    return grammar.control(value)


def _requirement(value: str) -> Problem:
    bad = grammar.control(value)
    if bad:
        return bad
    try:
        Requirement(value)
    except InvalidRequirement:
        return (f"{value!r} is not a pip requirement", 'pin it like "build==1.3.0"')
    return None


def _build_options(col: Problems, c: ImagesConfig) -> None:
    for i, p in enumerate(c.pythons):
        col.each(("pythons", i, "configure_opts"), p.configure_opts, _configure_opt)
    for name, prof in c.profiles.items():
        col.each(("profiles", name, "configure_opts"), prof.configure_opts, _configure_opt)
        col.add(("profiles", name, "cflags"), _cflags(prof.cflags))
    col.each(("dev_tools",), c.dev_tools, _requirement)


def _user(col: Problems, c: ImagesConfig) -> None:
    u = c.runtime_user
    if u.uid > ID_MAX:
        col.add(("runtime_user", "uid"), (f"uid {u.uid} is out of range (at most {ID_MAX})",
                                          "use a uid like 10001"))
    if u.gid > ID_MAX:
        col.add(("runtime_user", "gid"), (f"gid {u.gid} is out of range (at most {ID_MAX})",
                                          "use a gid like 10001"))
    if u.gid == 0:
        col.add(("runtime_user", "gid"), ("gid 0 is the root group", "use a gid >= 1000, e.g. 10001"))
    col.add(("runtime_user", "home"), grammar.abs_path(u.home))


def _env_value(value: str) -> Problem:
    bad = grammar.control(value)
    if bad:
        return bad
    if grammar.EXPANSION.search(value):
        return (f"{value!r} contains a $ expansion", "ENV values are literal here: write the value itself")
    return None


def _path_value(value: str) -> Problem:
    names, bad = grammar.template_names(value)
    if bad:
        return bad
    if names - {"prefix"}:
        return (f"unknown placeholder {{{sorted(names - {'prefix'})[0]}}}",
                "the only placeholder is {prefix} (the Python install prefix)")
    if "{prefix}/bin" not in value.split(":"):
        return ("{prefix}/bin is not on the PATH: python3 would not be found",
                'start it with "{prefix}/bin:", e.g. "{prefix}/bin:/usr/local/bin:/usr/bin:/bin"')
    for part in value.split(":"):
        bad = grammar.abs_path(part.replace("{prefix}", "/opt/x"))
        if bad:
            return (f"{part!r} is not a plain absolute path", "separate absolute paths with ':'")
    return None


def _env_and_labels(col: Problems, c: ImagesConfig) -> None:
    for key, value in c.env.items():
        col.add(("env", key), grammar.env_key(key))
        col.add(("env", key), _path_value(value) if key == "PATH" else _env_value(value))
    for key, value in c.labels.items():
        col.add(("labels", key), grammar.label_key(key))
        col.add(("labels", key), grammar.control(value))


def _certificates(col: Problems, c: ImagesConfig) -> None:
    first: dict[str, int] = {}
    for i, ca in enumerate(c.ca_certificates):
        name = PurePosixPath(ca).name
        if not name.endswith(".crt"):
            col.add(("ca_certificates", i), (f"{ca}: the file name does not end in .crt "
                                             "(update-ca-certificates reads only *.crt)",
                                             f"rename it to {PurePosixPath(name).stem or 'ca'}.crt"))
        elif not grammar.RELEASE.fullmatch(name):
            col.add(("ca_certificates", i), (f"{ca}: {name!r} is not a plain file name",
                                             "use letters, digits, '.', '_', '-'"))
        if name in first:
            col.add(("ca_certificates", i), (f"{ca}: same file name as ca_certificates[{first[name]}] "
                                             "(one would overwrite the other)", "rename one of them"))
        first.setdefault(name, i)
