"""Semantic checks of images.yaml (after its shape and grammar): versions and end-of-life
dates, distros, names that must refer to something, tag templates, include/exclude rules, CA
files, then the matrix (checks/matrix.py). Every problem is reported, one line each."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import typing

from packaging.version import InvalidVersion, Version

from orchestrator.config import eol, grammar
from orchestrator.config.checks import build, matrix, perf, scan, signing
from orchestrator.config.matrix import FREETHREADED, base_minor, python_minors
from orchestrator.config.model import VERSION_RE, Loaded, minor_of
from orchestrator.config.tags import TAG_FIELDS
from orchestrator.config.yamlsafe import Path_, Problems
from orchestrator.errors import raise_all


def check(loaded: Loaded, today: dt.date) -> list[str]:
    err = Problems(str(loaded.path), loaded.lines)
    seen = _check_pythons(loaded, err, today)
    pythons_ok = not err.problems  # else rules naming a bad entry would be blamed as well
    _check_distros(loaded, err, today)
    _check_names_and_tags(loaded, err)
    _check_rules(loaded, err, seen if pythons_ok else None)
    _check_ca_files(loaded, err)
    build.check(loaded.config, err)
    signing.check(loaded.config, err)
    scan.check(loaded.config.scan, err, today)
    perf.check(loaded.config, err)
    raise_all(err.problems)

    # Matrix-level checks (tags, empty matrix, deadsnakes coverage) live with the matrix.
    matrix.check(loaded, err)
    raise_all(err.problems)
    matrix.warnings(loaded, err)
    matrix.tag_warnings(loaded, err)
    return err.warnings


def _check_pythons(loaded: Loaded, err: Problems, today: dt.date) -> dict[str, int]:
    seen: dict[str, int] = {}
    for i, p in enumerate(loaded.config.pythons):
        vpath: Path_ = ("pythons", i, "version")
        if not VERSION_RE.match(p.version):
            err(vpath, f'"{p.version}" is not a CPython version', 'write "3.13" or "3.13.5"')
            continue
        try:
            Version(p.version)
        except InvalidVersion:  # pragma: no cover - the regex already guards this
            err(vpath, f'"{p.version}" is not a version', 'write "3.13"')
            continue
        minor = minor_of(p.version)
        if minor in seen:
            err(vpath, f"Python {minor} is listed twice", f"remove pythons[{seen[minor]}] or this one")
            continue
        seen[minor] = i
        if p.freethreaded:
            if Version(p.version) < Version("3.13"):
                err(("pythons", i, "freethreaded"),
                    f"Python {minor} has no free-threaded build (configure --disable-gil is 3.13+)",
                    "remove freethreaded from this entry or set it on 3.13 or later")
            else:
                seen[minor + FREETHREADED] = i
        _check_unsigned(err, i, minor, p.unsigned)
        end = eol.python_eol(minor)
        if end is None:
            err.warn(vpath, f"no EOL date known for Python {minor}")
            continue
        left = (end - today).days
        if left < 0:
            err(vpath, f"Python {minor} reached its end of life on {end}",
                f"remove it (orchestrator retire-python {minor})")
        elif left <= eol.WARN_DAYS:
            err.warn(vpath, f"Python {minor} reaches its end of life on {end} ({left} days left); "
                     f"plan retire-python {minor}")
    return seen


def _check_unsigned(err: Problems, i: int, minor: str, reason: str | None) -> None:
    """pythons[].unsigned: a reason, and only where a release has an OpenPGP signature to
    skip (before 3.14); a warning that the tarball may be built unverified."""
    if reason is None:
        return
    upath: Path_ = ("pythons", i, "unsigned")
    if not reason.strip():
        err(upath, "an empty reason", 'say why the tarball may go unverified, e.g. unsigned: '
            '"the mirror withdrew the .asc: the release key expired", or remove unsigned')
    elif not eol.pgp_signed(minor):
        err(upath, f"Python {minor} releases have no OpenPGP signature to go without (Sigstore "
            "only, PEP 761)", "remove unsigned from this entry")
    else:
        err.warn(upath, f"Python {minor}'s source tarball may be locked and built without its "
                 f"OpenPGP signature: {reason.strip()}")


def _check_distros(loaded: Loaded, err: Problems, today: dt.date) -> None:
    for name, d in loaded.config.distros.items():
        dpath: Path_ = ("distros", name)
        end = d.eol or eol.DISTRO_EOL.get(name)
        left = (end - today).days if end else 0
        if end is None:
            err(dpath + ("eol",), "no end-of-life date known", "add eol: YYYY-MM-DD")
        elif left < 0:
            err(dpath, f"{name} reached its end of life on {end}", "remove it from distros")
        elif left <= eol.WARN_DAYS:
            err.warn(dpath, f"{name} reaches its end of life on {end} ({left} days left)")
        for minor in d.packages.runtime_for_python:
            ppath: Path_ = dpath + ("packages", "runtime_for_python", minor)
            if not re.fullmatch(r"3\.\d+", minor):
                err(ppath, f'"{minor}" is not a Python minor version', 'write it as "3.12"')
        for j, m in enumerate(d.methods):
            if m == "deadsnakes" and d.family != "ubuntu":
                err(dpath + ("methods", j), f"deadsnakes is an Ubuntu PPA and {name} is {d.family}",
                    "use source or python-build on Debian")


def _check_minor_defaults(loaded: Loaded, err: Problems) -> None:
    """tags.defaults: each key a minor of pythons, each distro one of distros."""
    c = loaded.config
    try:
        minors = python_minors(c) if c.tags.defaults else []
    except ValueError:  # a bad pythons[].version: reported by its own check
        return
    for minor, chosen in c.tags.defaults.items():
        if minor not in minors:
            err(("tags", "defaults", minor), f'"{minor}" is not a minor of pythons',
                suggest(minor, minors))
        if chosen.distro not in c.distros:
            err(("tags", "defaults", minor, "distro"), f'unknown distro "{chosen.distro}"',
                suggest(chosen.distro, c.distros))


def _check_names_and_tags(loaded: Loaded, err: Problems) -> None:
    c = loaded.config
    if c.tags.default_distro not in c.distros:
        err(("tags", "default_distro"), f'unknown distro "{c.tags.default_distro}"',
            suggest(c.tags.default_distro, c.distros))
    _check_minor_defaults(loaded, err)
    if c.default_profile not in c.profiles:
        err(("default_profile",), f'unknown profile "{c.default_profile}"',
            suggest(c.default_profile, c.profiles))
    if c.runtime_user.uid == 0 or c.runtime_user.name == "root":
        err(("runtime_user",), "the runtime user must not be root", "use a uid >= 1000")

    fields = set(TAG_FIELDS)
    for i, t in enumerate([*(m.template for m in c.tags.moving), c.tags.immutable]):
        tpath: Path_ = ("tags", "moving", i, "template") if i < len(c.tags.moving) else ("tags", "immutable")
        names, bad = grammar.template_names(t)
        if bad:
            err(tpath, *bad)
            continue
        unknown = names - fields
        if unknown:
            err(tpath, f"unknown placeholder {{{sorted(unknown)[0]}}}",
                f"use {', '.join('{' + f + '}' for f in TAG_FIELDS)}")
    if "{date}" not in c.tags.immutable or "{version}" not in c.tags.immutable:
        err(("tags", "immutable"), "the immutable tag must contain {version} and {date}",
            'e.g. "{version}.{date}-{variant}-{distro}{method}"')


def _check_rules(loaded: Loaded, err: Problems, seen: dict[str, int] | None) -> None:
    c = loaded.config
    for k, rules in (("include", c.include), ("exclude", c.exclude)):
        for i, r in enumerate(rules):
            if r.distro is not None and r.distro not in c.distros:
                err((k, i, "distro"), f'unknown distro "{r.distro}"', suggest(r.distro, c.distros))
            if r.python is not None and seen is not None and r.python not in seen:
                fix = suggest(r.python, seen)
                if r.python.endswith(FREETHREADED) and base_minor(r.python) in seen:
                    fix = (f"set freethreaded: true on pythons[{seen[base_minor(r.python)]}] "
                           f"({base_minor(r.python)}) or name the cells of {base_minor(r.python)}")
                err((k, i, "python"), f'Python "{r.python}" is not in pythons', fix)
            if k == "include" and (r.distro is None or r.python is None or r.method is None):
                err((k, i), "an include rule needs distro, python and method",
                    "name all three (variant is optional)")


def _check_ca_files(loaded: Loaded, err: Problems) -> None:
    for i, ca in enumerate(loaded.config.ca_certificates):
        pem = loaded.root / ca
        try:
            text = pem.read_text(errors="replace") if pem.is_file() else None
        except OSError as exc:
            err(("ca_certificates", i), f"{ca}: cannot be read ({exc.strerror})", "make it readable")
            continue
        if text is None:
            err(("ca_certificates", i), f"{ca}: no such file", "give a PEM file relative to images.yaml")
        elif "-----BEGIN CERTIFICATE-----" not in text:
            err(("ca_certificates", i), f"{ca} is not a PEM certificate", "give a PEM (.crt) file")


def suggest(word: str, options: typing.Iterable[str]) -> str:
    opts = list(options)
    close = difflib.get_close_matches(word, opts, n=1, cutoff=0.5)
    return f'did you mean "{close[0]}"?' if close else f"one of: {', '.join(opts)}"
