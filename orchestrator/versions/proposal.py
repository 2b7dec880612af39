"""Proposals: everything add-python / retire-python would write, computed in memory (the
edited images.yaml validated, the lock edited, the files rendered, the plan diffed); then
``apply`` writes it and ``report`` says what it did."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from packaging.version import Version
from pydantic import ValidationError

from orchestrator import log, naming, render
from orchestrator.config import eol, loader, matrix
from orchestrator.config.model import ImagesConfig, Loaded, minor_of
from orchestrator.errors import ConfigError, LockError, UsageError
from orchestrator.lock import lockfile, sources
from orchestrator.lock.lockfile import Lock, PythonLock
from orchestrator.planning import plan
from orchestrator.versions.plandiff import PlanDiff, plan_diff
from orchestrator.versions.python_entries import add_python_text, retire_python_text
from orchestrator.versions.yamledit import unified_diff

_log = log.get("versions")

_ADD_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_MINOR_RE = re.compile(r"^3\.\d{1,2}$")


class Index(Protocol):
    """Where CPython releases are looked up (``lock_sources.PythonOrgIndex``,
    ``lock_sources.PyenvDefinitions``)."""

    def versions(self, minor: str) -> list[Version]: ...

    def resolve(self, minor: str, pinned: str | None) -> PythonLock: ...


IndexFor = Callable[[ImagesConfig], Index]


# ============================================================================ proposals


@dataclass(frozen=True)
class Proposal:
    """Everything add-python / retire-python would write, computed before writing anything."""

    action: str
    old_text: str
    new_text: str
    loaded: Loaded  # the edited images.yaml, fully validated
    old_lock: Lock
    lock: Lock
    files: dict[Path, bytes]
    diff: PlanDiff
    notes: tuple[str, ...]
    python: PythonLock | None = None  # the newly locked release (add-python)

    @property
    def lock_path(self) -> Path:
        return lockfile.lock_path(self.loaded)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found", "pass --config PATH or create it") from None


def _validate(text: str, path: Path, today: dt.date) -> Loaded:
    data, lines = loader.parse_yaml(text, str(path))
    return loader.validate_data(data, path, today, lines)


def _validate_lenient(text: str, path: Path, today: dt.date) -> Loaded:
    """The current images.yaml, even when it only fails the semantic checks (e.g. a Python past
    its EOL, which is exactly when retire-python is needed)."""
    try:
        return _validate(text, path, today)
    except ConfigError as strict:
        data, lines = loader.parse_yaml(text, str(path))
        try:
            cfg = ImagesConfig.model_validate(data)
        except ValidationError:
            raise strict from None
        _log.warning("current images.yaml does not validate; retiring anyway", error=str(strict))
        return Loaded(cfg, path, (), lines)


def parse_add_arg(text: str) -> tuple[str, str | None]:
    """'3.14' -> ('3.14', None); '3.14.2' -> ('3.14', '3.14.2')."""
    if not _ADD_RE.match(text):
        raise UsageError(f'add-python: "{text}" is not a CPython version; give X.Y (newest patch) '
                         "or X.Y.Z (pinned), e.g. 3.14 or 3.14.2")
    return minor_of(text), (text if text.count(".") == 2 else None)


def parse_minor_arg(text: str) -> str:
    if not _MINOR_RE.match(text):
        raise UsageError(f'retire-python: "{text}" is not a minor version; give X.Y, e.g. 3.13')
    return text


def _where(index: Index) -> str:
    if isinstance(index, sources.PythonOrgIndex):
        return f"{index.base} (sources.python)"
    if isinstance(index, sources.PyenvDefinitions):
        return f"{index.root} (pyenv definitions)"
    return repr(index)


def resolve_release(index: Index, minor: str, pinned: str | None) -> PythonLock:
    """The release to lock; UsageError (a refusal) when the source does not have it."""
    wanted = pinned or minor
    where = _where(index)
    available = index.versions(minor)  # SourceError (exit 3) when the source does not answer
    if not available:
        raise UsageError(f"Python {wanted} is not released at {where}: no {minor}.x release there")
    if pinned and Version(pinned) not in available:
        raise UsageError(f"Python {pinned} is not released at {where}: newest {minor}.x there "
                         f"is {available[-1]}")
    try:
        return index.resolve(minor, pinned)
    except sources.NotReleased as exc:
        raise UsageError(f"Python {wanted} is not released at {where}: {exc}") from None


def _cells_of(loaded: Loaded, minor: str) -> list[matrix.Cell]:
    return [c for c in matrix.expand(loaded.config) if c.minor == minor]


def _ids(cells: list[matrix.Cell]) -> str:
    """3.12-source-bookworm-* style: one entry per (minor, method, distro)."""
    return ", ".join(dict.fromkeys(f"{c.minor}-{c.method}-{c.distro}-*" for c in cells))


def propose_add(path: Path, version: str, index_for: IndexFor, today: dt.date,
                methods: Sequence[str] = (), unsigned: str | None = None) -> Proposal:
    minor, pinned = parse_add_arg(version)
    text = _read(path)
    old = _validate(text, path, today)
    cfg, file = old.config, str(path)
    present = [(i, p.version) for i, p in enumerate(cfg.pythons) if minor_of(p.version) == minor]
    if present:
        i, v = present[0]
        raise UsageError(f'Python {minor} is already in {file} (pythons[{i}]: "{v}"); to move to '
                         f"a newer patch run `orchestrator lock --upgrade --only {minor}`")
    end = eol.python_eol(minor)
    if end is not None and end < today:
        raise UsageError(f"Python {minor} reached its end of life on {end} "
                         "(orchestrator/config/eol.py); refusing to add it")
    minors = [minor_of(p.version) for p in cfg.pythons]
    if len(minors) >= cfg.max_pythons:
        oldest = min(minors, key=Version)
        raise UsageError(f"{file} already has {len(minors)} Pythons ({', '.join(minors)}) and "
                         f"max_pythons is {cfg.max_pythons}; retire the oldest first: "
                         f"orchestrator retire-python {oldest}")
    old_lock = lockfile.read(old)
    lockfile.check_against(old, old_lock)

    new_text, notes = add_python_text(text, pinned or minor, file, methods, unsigned)
    new = _validate(new_text, path, today)  # before any network or disk write
    cells = _cells_of(new, minor)
    if not cells:
        offered = ", ".join(dict.fromkeys(m for d in new.config.distros.values() for m in d.methods))
        raise UsageError(f"Python {minor} would have no image in {file}: no distro builds it with "
                         f"the methods left ({offered}) once exclude rules apply; add a distro or "
                         "method that can build it (distros.<name>.methods, include) first")
    compiled = [c for c in cells if c.compiles]
    if not compiled:  # deadsnakes only: the PPA's packages, no CPython tarball to pin
        notes.append(f"no tarball locked: no cell compiles {minor} ({_ids(cells)}: "
                     "the deadsnakes PPA's packages)")
        return _finish(f"add-python {version}", text, new_text, old, new, old_lock,
                       lockfile.without_python(old_lock, minor), notes, today, None)
    try:
        resolved = resolve_release(index_for(cfg), minor, pinned)
    except UsageError as exc:
        # An older minor than one the matrix builds is released upstream: the source just lacks
        # it, and building it from the PPA alone (as before a retire-python) may be the intent.
        older = any(Version(minor) < Version(m) for m in minors)
        if not older or not any(c.method == "deadsnakes" for c in cells):
            raise
        raise UsageError(f"{exc}; needed by {_ids(compiled)} (to build {minor} with deadsnakes "
                         f"only: add-python {version} --method deadsnakes)") from None
    new_lock = replace(old_lock, pythons={**old_lock.pythons, minor: resolved})
    return _finish(f"add-python {version}", text, new_text, old, new, old_lock, new_lock,
                   notes, today, resolved)


def propose_retire(path: Path, minor_arg: str, today: dt.date) -> Proposal:
    minor = parse_minor_arg(minor_arg)
    text = _read(path)
    old = _validate_lenient(text, path, today)
    file = str(path)
    minors = [minor_of(p.version) for p in old.config.pythons]
    if minor not in minors:
        raise UsageError(f"Python {minor} is not in {file} (pythons: {', '.join(minors)}); "
                         "nothing to retire")
    if len(minors) == 1:
        raise UsageError(f"Python {minor} is the only Python in {file}; add its successor first "
                         "(orchestrator add-python X.Y), then retire it")
    new_text, notes = retire_python_text(text, minor, file)
    if any(r.python == minor and r.method and not (r.distro or r.variant) for r in old.config.exclude):
        kept = dict.fromkeys(c.method for c in _cells_of(old, minor))
        notes.append(f"to add {minor} back with the same methods: orchestrator add-python {minor} "
                     + " ".join(f"--method {m}" for m in kept)
                     + " (the comments of the removed lines are not restored)")
    new = _validate(new_text, path, today)
    old_lock = lockfile.read(old)
    new_lock = lockfile.prune(new.config, old_lock)
    return _finish(f"retire-python {minor}", text, new_text, old, new, old_lock, new_lock,
                   notes, today, None)


def _finish(action: str, text: str, new_text: str, old: Loaded, new: Loaded, old_lock: Lock,
            new_lock: Lock, notes: list[str], today: dt.date, python: PythonLock | None) -> Proposal:
    lockfile.check_against(new, new_lock)
    files = render.render_all(new, new_lock)
    try:
        before = plan.build(old, old_lock, today=today)
    except LockError as exc:
        raise LockError(f"{exc} (needed to show the plan before {action})") from None
    after = plan.build(new, new_lock, today=today)
    return Proposal(action, text, new_text, new, old_lock, new_lock, files,
                    plan_diff(old, before, new, after), tuple(notes), python)


# ============================================================================ writing


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    if path.exists():
        shutil.copymode(path, tmp)
    tmp.replace(path)


def apply(p: Proposal) -> list[Path]:
    """Write images.yaml, images.lock and the generated files. Returns changed generated paths."""
    _atomic_write(p.loaded.path, p.new_text.encode("utf-8"))
    _atomic_write(p.lock_path, p.lock.dumps().encode("utf-8"))
    return render.write(p.loaded, p.files)


def _signature(py: PythonLock) -> str:
    if py.signature_url and py.signing_key:
        return f"{py.signature_url} (key {py.signing_key.fingerprint})"
    minor = minor_of(py.version)
    if minor in eol.PYTHON_SIGNING_KEY and eol.PYTHON_SIGNING_KEY[minor] is None:
        return f"none (Python {minor} releases are signed with Sigstore only, no .asc)"
    return "none (no .asc next to the tarball at the source)"


def report(p: Proposal, changed: list[Path] | None) -> str:
    """What the command prints: the edits, the lock entry, the plan diff."""
    cfg = p.loaded.config
    out = [f"{p.action}:"]
    out += [f"  {p.loaded.path}: {n}" for n in p.notes]
    for ch in lockfile.diff(p.old_lock, p.lock):
        out.append(f"  {p.lock_path}: {ch}")
    if p.python is not None:
        out += [f"    url        {p.python.url}",
                f"    sha256     {p.python.sha256}",
                f"    signature  {_signature(p.python)}"]
    out.append(unified_diff(p.old_text, p.new_text, p.loaded.path.name).rstrip("\n"))
    if changed is None:
        out.append(f"  {p.loaded.output_dir}: {len(p.files)} file(s) would be rendered "
                   "(dry run: nothing written)")
    else:
        out.append(f"  {p.loaded.output_dir}: re-rendered, {len(changed)} file(s) changed")
    out += p.diff.lines()
    if p.diff.removed:
        repo = naming.repository_ref(cfg.publish.registry, cfg.publish.repository)
        out.append(f"note: tags already published to {repo} are NOT deleted: they stay in the "
                   "registry and keep working, but are no longer rebuilt or moved")
    return "\n".join(out) + "\n"
