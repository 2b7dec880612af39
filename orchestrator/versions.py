"""``add-python`` / ``retire-python``: adding or retiring a CPython minor is one command and
one reviewable diff (images.yaml, images.lock, generated/).

Layers, so that everything but the last is unit-testable without network or disk writes:

* text edits of images.yaml (``add_python_text``, ``retire_python_text``): careful edits of
  the ``pythons``/``include``/``exclude`` blocks located with the YAML composer's marks, so
  comments, key order, anchors and flow-style lists stay byte-identical (a ruamel.yaml
  round trip reflows the long flow lists and re-indents sequences);
* proposals (``propose_add``, ``propose_retire``): validate the edited images.yaml, edit the
  lock, render, and diff the plan before/after -- all in memory, nothing written;
* ``apply``: writes images.yaml, images.lock and generated/ once everything above succeeded;
* the CLI handlers, registered by ``register`` (called from ``cli._extend_parser``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import yaml
from packaging.version import Version
from pydantic import ValidationError

from orchestrator import config as config_mod
from orchestrator import eol, log, matrix, settings
from orchestrator import lock as lock_mod
from orchestrator import plan as plan_mod
from orchestrator import render as render_mod
from orchestrator.cli import command
from orchestrator.config import ImagesConfig, Loaded, minor_of
from orchestrator.errors import ConfigError, LockError, UsageError
from orchestrator.lock import Lock, PythonLock

_log = log.get("versions")

_ADD_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_MINOR_RE = re.compile(r"^3\.\d{1,2}$")


class Index(Protocol):
    """Where CPython releases are looked up (``lock.PythonOrgIndex``, ``lock.PyenvDefinitions``)."""

    def versions(self, minor: str) -> list[Version]: ...

    def resolve(self, minor: str, pinned: str | None) -> PythonLock: ...


IndexFor = Callable[[ImagesConfig], Index]


# ============================================================================ text edits
#
# Positions come from yaml.compose (marks are character offsets into the text). Every edit
# works on whole lines (block style) or on the item text (flow style) and re-composes the
# document before the next edit, so offsets never go stale.


def _compose(text: str, file: str) -> yaml.MappingNode:
    config_mod.parse_yaml(text, file)  # raises ConfigError (with a line) on YAML errors
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise UsageError(f"{file}: the top level is not a block mapping; edit it by hand")
    return root


def _top(root: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _line_end(text: str, i: int) -> int:
    """Index just past the newline ending the line that holds index ``i``."""
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def _end(text: str, node: yaml.Node) -> int:
    """Index just past the last character of ``node``'s own text (not trailing space/newlines)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = int(node.end_mark.index)
    elif isinstance(node, yaml.MappingNode):
        end = max((_end(text, n) for kv in node.value for n in kv), default=node.start_mark.index)
    elif isinstance(node, yaml.SequenceNode):
        end = max((_end(text, n) for n in node.value), default=node.start_mark.index)
    else:  # pragma: no cover - compose only yields the three node kinds
        end = int(node.end_mark.index)
    while end > node.start_mark.index and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def _dash_prefix(text: str, seq_key: str, item: yaml.Node) -> str:
    """The ``"  - "`` before a block sequence item (what a new sibling line starts with)."""
    start = item.start_mark.index
    prefix = text[_line_start(text, start):start]
    if not re.fullmatch(r"[ \t]*-[ \t]+", prefix):
        raise UsageError(f"{seq_key}: an item is not laid out as '  - ...' on its own line "
                         f"(line {item.start_mark.line + 1}); edit it by hand")
    return prefix


def _block_item_span(text: str, seq_key: str, item: yaml.Node) -> tuple[int, int]:
    """(start, end) of the whole lines holding one block sequence item."""
    _dash_prefix(text, seq_key, item)
    return _line_start(text, item.start_mark.index), _line_end(text, _end(text, item))


def _item_text(text: str, item: yaml.Node) -> str:
    return " ".join(text[item.start_mark.index:_end(text, item)].split())


def _scalar(node: yaml.Node, key: str) -> yaml.ScalarNode | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
                return v
    return None


def _insert_item(text: str, root: yaml.MappingNode, key: str, pos: int, item: str,
                 comment: str = "", prefix: str = "  - ",
                 after_keys: tuple[str, ...] = ()) -> str:
    """Insert ``item`` (one line of YAML) at index ``pos`` of the top-level sequence ``key``.

    A missing key is added as a block sequence after the last of ``after_keys`` present.
    ``comment`` only goes on block-style lines (``   # why``).
    """
    nl = _newline(text)
    found = _top(root, key)
    if found is None:
        anchors = [kv for kv in (_top(root, k) for k in after_keys) if kv is not None]
        if not anchors:
            raise UsageError(f"cannot place a new {key}: block; edit it by hand")
        at = max(_line_end(text, _end(text, v)) for _k, v in anchors)
        block = f"{key}:{nl}{prefix}{item}{comment}{nl}"
        if at == len(text) and not text.endswith("\n"):
            block = nl + block
        return text[:at] + block + text[at:]
    seq = found[1]
    if not isinstance(seq, yaml.SequenceNode):
        raise UsageError(f"{key}: is not a list; edit it by hand")
    items = seq.value
    if seq.flow_style:
        if not items:
            at = seq.start_mark.index + 1
            return text[:at] + item + text[at:]
        if pos < len(items):
            at = items[pos].start_mark.index
            return text[:at] + item + ", " + text[at:]
        at = _end(text, items[-1])
        return text[:at] + ", " + item + text[at:]
    ref = items[pos] if pos < len(items) else items[-1]
    line = _dash_prefix(text, key, ref) + item + comment + nl
    if pos == 0:  # above the comment lines directly over the first item (they belong to it)
        at = _line_start(text, items[0].start_mark.index)
        while at > 0:
            above = _line_start(text, at - 1)
            if not text[above:at].lstrip().startswith("#") or above <= found[0].start_mark.index:
                break
            at = above
    else:
        at = _line_end(text, _end(text, items[pos - 1]))
        if at == len(text) and not text.endswith("\n"):
            line = nl + line[: -len(nl)]
    return text[:at] + line + text[at:]


def _remove_item(text: str, root: yaml.MappingNode, key: str, index: int) -> str:
    """Remove item ``index`` of the top-level sequence ``key``; the key too when it empties."""
    found = _top(root, key)
    assert found is not None
    k, seq = found
    assert isinstance(seq, yaml.SequenceNode)
    items = seq.value
    if len(items) == 1:  # drop "key:" and its list (include/exclude default to none)
        start = _line_start(text, k.start_mark.index)
        end = _line_end(text, _end(text, seq))
        blank_before = start == 0 or not text[_line_start(text, start - 1):start].strip()
        after = text[end:_line_end(text, end)]
        if blank_before and after and not after.strip():
            end += len(after)  # do not leave two blank lines where the block was
        return text[:start] + text[end:]
    if seq.flow_style:
        if index < len(items) - 1:
            return text[:items[index].start_mark.index] + text[items[index + 1].start_mark.index:]
        return text[:_end(text, items[index - 1])] + text[_end(text, items[index]):]
    start, end = _block_item_span(text, key, items[index])
    return text[:start] + text[end:]


def _python_versions(root: yaml.MappingNode) -> list[str | None]:
    found = _top(root, "pythons")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        return []
    return [s.value if (s := _scalar(item, "version")) else None for item in found[1].value]


def _new_python_item(root: yaml.MappingNode, version: str) -> str:
    """``version: "3.15"`` (or ``{version: "3.15"}``) styled like the existing entries."""
    found = _top(root, "pythons")
    items = found[1].value if found and isinstance(found[1], yaml.SequenceNode) else []
    quote, flow = '"', False
    for item in items:
        s = _scalar(item, "version")
        if s is not None:
            quote = "'" if s.style == "'" else '"'
            flow = bool(getattr(item, "flow_style", False))
            break
    body = f"version: {quote}{version}{quote}"
    return "{" + body + "}" if flow else body


def _sort_key(version: str | None) -> Version:
    try:
        return Version(minor_of(version)) if version else Version("0")
    except ValueError:
        return Version("0")


def insert_python_text(text: str, version: str, file: str = "images.yaml") -> str:
    """images.yaml with ``- version: "<version>"`` added to ``pythons`` in version order."""
    root = _compose(text, file)
    found = _top(root, "pythons")
    if found is None:
        raise UsageError(f"{file}: has no pythons: list; edit it by hand")
    versions = _python_versions(root)
    new = Version(minor_of(version))
    pos = next((i for i, v in enumerate(versions) if v and _sort_key(v) > new), len(versions))
    return _insert_item(text, root, "pythons", pos, _new_python_item(root, version))


def _deadsnakes_clashes(text: str, file: str, minor: str) -> list[str]:
    """Distros whose deadsnakes cells for ``minor`` cannot exist (the distro ships it)."""
    data, _ = config_mod.parse_yaml(text, file)
    try:
        cfg = ImagesConfig.model_validate(data)
    except ValidationError:
        return []  # full validation reports it
    out: list[str] = []
    for c in matrix.expand(cfg):
        clash = c.method == "deadsnakes" and cfg.distros[c.distro].system_python == minor
        if c.minor == minor and clash and c.distro not in out:
            out.append(c.distro)
    return out


def add_python_text(text: str, version: str, file: str = "images.yaml") -> tuple[str, list[str]]:
    """Add ``version`` ("3.15" or "3.15.2") to images.yaml; (new text, notes for the report).

    Where a distro ships that minor itself and uses the deadsnakes PPA (which then does not
    publish it), the matching exclude rule is added too, with the same wording as a hand
    written one, so that retire + add of such a minor gives the original bytes back.
    """
    minor = minor_of(version)
    new = insert_python_text(text, version, file)
    notes = [f'pythons += "{version}"']
    for distro in _deadsnakes_clashes(new, file, minor):
        root = _compose(new, file)
        rule = f'{{distro: {distro}, python: "{minor}", method: deadsnakes}}'
        found = _top(root, "exclude")
        pos = len(found[1].value) if found and isinstance(found[1], yaml.SequenceNode) else 0
        prefix = "  - "
        pythons = _top(root, "pythons")
        if pythons and isinstance(pythons[1], yaml.SequenceNode) and not pythons[1].flow_style:
            prefix = _dash_prefix(new, "pythons", pythons[1].value[0])
        new = _insert_item(new, root, "exclude", pos, rule, f"   # {distro} ships {minor} itself",
                           prefix, after_keys=("include", "max_pythons", "pythons"))
        notes.append(f"exclude += {rule} ({distro} ships {minor} itself; "
                     "the deadsnakes PPA does not publish it there)")
    return new, notes


def retire_python_text(text: str, minor: str, file: str = "images.yaml") -> tuple[str, list[str]]:
    """Remove ``minor`` from pythons and every include/exclude rule naming it.

    Returns (new text, notes for the report). A rule list that becomes empty is removed
    with its key (include/exclude default to none).
    """
    root = _compose(text, file)
    versions = _python_versions(root)
    idx = [i for i, v in enumerate(versions) if v and _minor_or_none(v) == minor]
    if not idx:
        raise UsageError(f"Python {minor} is not in {file}")
    if len(idx) == len(versions):
        raise UsageError(f"Python {minor} is the only Python in {file}; cannot retire it")
    notes: list[str] = []
    for i in reversed(idx):
        notes.insert(0, f'pythons -= "{versions[i]}"')
        text = _remove_item(text, root, "pythons", i)
        root = _compose(text, file)
    for key in ("include", "exclude"):
        while True:
            found = _top(root, key)
            if found is None or not isinstance(found[1], yaml.SequenceNode):
                break
            hits = [i for i, item in enumerate(found[1].value)
                    if (s := _scalar(item, "python")) is not None and s.value == minor]
            if not hits:
                break
            notes.append(f"{key} -= {_item_text(text, found[1].value[hits[0]])}")
            text = _remove_item(text, root, key, hits[0])
            root = _compose(text, file)
    return text, notes


def _minor_or_none(version: str) -> str | None:
    try:
        return minor_of(version)
    except ValueError:
        return None


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))


# ============================================================================ plan diff


class _DatePlaceholder:
    """Stands in for the build date in immutable tags: 3.15.0.<date>-runtime-bookworm."""

    def strftime(self, fmt: str) -> str:
        return "<date>"


@dataclass(frozen=True)
class ImageChange:
    id: str
    version: str
    tags: tuple[str, ...]  # moving tags
    immutable_tag: str  # with <date> for the build date

    def line(self, sign: str, width: int = 0) -> str:
        tags = ", ".join((*self.tags, self.immutable_tag))
        return f"  {sign} {self.id.ljust(width)}  {self.version}  {tags}"


@dataclass(frozen=True)
class PlanDiff:
    added: tuple[ImageChange, ...]
    removed: tuple[ImageChange, ...]
    tags_added: tuple[str, ...]
    tags_removed: tuple[str, ...]

    def lines(self) -> list[str]:
        out = [f"plan: +{len(self.added)} image(s), -{len(self.removed)} image(s); "
               f"moving tags +{len(self.tags_added)}, -{len(self.tags_removed)}"]
        width = max((len(c.id) for c in (*self.added, *self.removed)), default=0)
        out += [c.line("+", width) for c in self.added]
        out += [c.line("-", width) for c in self.removed]
        return out


def _changes(loaded: Loaded, p: plan_mod.Plan, ids: set[str]) -> tuple[ImageChange, ...]:
    placeholder: Any = _DatePlaceholder()
    out = []
    for img in p.images:
        if img.id in ids:
            _moving, immutable = matrix.tags_for(loaded.config, img.cell, img.version, placeholder)
            out.append(ImageChange(img.id, img.version, img.tags, immutable))
    return tuple(out)


def plan_diff(before_loaded: Loaded, before: plan_mod.Plan,
              after_loaded: Loaded, after: plan_mod.Plan) -> PlanDiff:
    b_ids, a_ids = {i.id for i in before.images}, {i.id for i in after.images}
    b_tags = {t for i in before.images for t in i.tags}
    a_tags = {t for i in after.images for t in i.tags}
    return PlanDiff(
        _changes(after_loaded, after, a_ids - b_ids),
        _changes(before_loaded, before, b_ids - a_ids),
        tuple(sorted(a_tags - b_tags)),
        tuple(sorted(b_tags - a_tags)),
    )


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
        return lock_mod.lock_path(self.loaded)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found", "pass --config PATH or create it") from None


def _validate(text: str, path: Path, today: dt.date) -> Loaded:
    data, lines = config_mod.parse_yaml(text, str(path))
    return config_mod.validate_data(data, path, today, lines)


def _validate_lenient(text: str, path: Path, today: dt.date) -> Loaded:
    """The current images.yaml, even when it only fails the semantic checks (e.g. a Python past
    its EOL, which is exactly when retire-python is needed)."""
    try:
        return _validate(text, path, today)
    except ConfigError as strict:
        data, lines = config_mod.parse_yaml(text, str(path))
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
    if isinstance(index, lock_mod.PythonOrgIndex):
        return f"{index.base} (sources.python)"
    if isinstance(index, lock_mod.PyenvDefinitions):
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
    except lock_mod.NotReleased as exc:
        raise UsageError(f"Python {wanted} is not released at {where}: {exc}") from None


def propose_add(path: Path, version: str, index_for: IndexFor, today: dt.date) -> Proposal:
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
                         "(orchestrator/eol.py); refusing to add it")
    minors = [minor_of(p.version) for p in cfg.pythons]
    if len(minors) >= cfg.max_pythons:
        oldest = min(minors, key=Version)
        raise UsageError(f"{file} already has {len(minors)} Pythons ({', '.join(minors)}) and "
                         f"max_pythons is {cfg.max_pythons}; retire the oldest first: "
                         f"orchestrator retire-python {oldest}")
    old_lock = lock_mod.read(old)
    lock_mod.check_against(old, old_lock)

    new_text, notes = add_python_text(text, pinned or minor, file)
    new = _validate(new_text, path, today)  # before any network or disk write
    resolved = resolve_release(index_for(cfg), minor, pinned)
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
    new = _validate(new_text, path, today)
    old_lock = lock_mod.read(old)
    new_lock = lock_mod.prune(new.config, old_lock)
    return _finish(f"retire-python {minor}", text, new_text, old, new, old_lock, new_lock,
                   notes, today, None)


def _finish(action: str, text: str, new_text: str, old: Loaded, new: Loaded, old_lock: Lock,
            new_lock: Lock, notes: list[str], today: dt.date, python: PythonLock | None) -> Proposal:
    lock_mod.check_against(new, new_lock)
    files = render_mod.render_all(new, new_lock)
    try:
        before = plan_mod.build(old, old_lock, today=today)
    except LockError as exc:
        raise LockError(f"{exc} (needed to show the plan before {action})") from None
    after = plan_mod.build(new, new_lock, today=today)
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
    return render_mod.write(p.loaded, p.files)


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
    for ch in lock_mod.diff(p.old_lock, p.lock):
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
        repo = f"{cfg.publish.registry}/{cfg.publish.repository}"
        out.append(f"note: tags already published to {repo} are NOT deleted: they stay in the "
                   "registry and keep working, but are no longer rebuilt or moved")
    return "\n".join(out) + "\n"


# ============================================================================ CLI


def _index_for(args: argparse.Namespace) -> IndexFor:
    def make(cfg: ImagesConfig) -> Index:
        src = cfg.sources
        if args.from_pyenv:
            return lock_mod.PyenvDefinitions(Path(args.from_pyenv), src.python_keys)
        return lock_mod.PythonOrgIndex(src.python, src.python_keys)

    return make


def _finish_cli(p: Proposal, dry_run: bool) -> int:
    for w in p.loaded.warnings:
        _log.warning(w)
    changed = None if dry_run else apply(p)
    print(report(p, changed), end="")
    return 0


@command("add-python")
def cmd_add_python(args: argparse.Namespace) -> int:
    p = propose_add(Path(args.config), args.version, _index_for(args), settings.get().today)
    return _finish_cli(p, args.dry_run)


@command("retire-python")
def cmd_retire_python(args: argparse.Namespace) -> int:
    p = propose_retire(Path(args.config), args.minor, settings.get().today)
    return _finish_cli(p, args.dry_run)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser, sel: argparse.ArgumentParser) -> None:
    s = sub.add_parser("add-python", parents=[common],
                       help="add a CPython minor: images.yaml, images.lock, generated/")
    s.add_argument("version", metavar="VERSION",
                   help="3.14 (newest patch, resolved at sources.python) or 3.14.2 (pinned)")
    s.add_argument("--from-pyenv", metavar="PYENV_ROOT",
                   help="resolve from a pyenv checkout's pinned definitions (offline)")
    s.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    s = sub.add_parser("retire-python", parents=[common],
                       help="remove a CPython minor (published tags stay in the registry)")
    s.add_argument("minor", metavar="MINOR", help="e.g. 3.11")
    s.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
