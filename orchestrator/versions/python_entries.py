"""Text edits of images.yaml for add-python / retire-python: the ``pythons`` entry, the
``include``/``exclude`` rules and the ``tags.defaults`` entry of a CPython minor, made with
the byte-preserving edits of ``yamledit``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import yaml
from packaging.version import Version
from pydantic import ValidationError

from orchestrator.config import loader, matrix
from orchestrator.config.axes import METHODS
from orchestrator.config.model import ImagesConfig, minor_of
from orchestrator.errors import UsageError
from orchestrator.versions.yamledit import (
    compose,
    dash_prefix,
    insert_item,
    item_text,
    line_end,
    line_start,
    newline,
    node_end,
    remove_item,
    scalar,
    top,
)


def _python_versions(root: yaml.MappingNode) -> list[str | None]:
    found = top(root, "pythons")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        return []
    return [s.value if (s := scalar(item, "version")) else None for item in found[1].value]


def _new_python_item(root: yaml.MappingNode, version: str, unsigned: str | None = None,
                     indent: int = 4, nl: str = "\n") -> str:
    """``version: "3.15"`` (or ``{version: "3.15"}``) styled like the existing entries; with
    ``unsigned``, its ``unsigned: "<reason>"`` (a JSON string: a valid YAML double-quoted
    scalar whatever the reason holds) on the next line, ``indent`` deep (block style)."""
    found = top(root, "pythons")
    items = found[1].value if found and isinstance(found[1], yaml.SequenceNode) else []
    quote, flow = '"', False
    for item in items:
        s = scalar(item, "version")
        if s is not None:
            quote = "'" if s.style == "'" else '"'
            flow = bool(getattr(item, "flow_style", False))
            break
    body = f"version: {quote}{version}{quote}"
    if unsigned is not None:
        reason = json.dumps(unsigned, ensure_ascii=False)
        body += f", unsigned: {reason}" if flow else f"{nl}{' ' * indent}unsigned: {reason}"
    return "{" + body + "}" if flow else body


def _sort_key(version: str | None) -> Version:
    try:
        return Version(minor_of(version)) if version else Version("0")
    except ValueError:
        return Version("0")


def insert_python_text(text: str, version: str, file: str = "images.yaml",
                       unsigned: str | None = None) -> str:
    """images.yaml with ``- version: "<version>"`` added to ``pythons`` in version order
    (newest first when the list is written that way); ``unsigned``: its reason to build
    without the tarball's OpenPGP signature (pythons[].unsigned)."""
    root = compose(text, file)
    found = top(root, "pythons")
    if found is None:
        raise UsageError(f"{file}: has no pythons: list; edit it by hand")
    versions = _python_versions(root)
    new = Version(minor_of(version))
    keys = [_sort_key(v) for v in versions if v]
    if len(keys) > 1 and keys == sorted(keys, reverse=True) and keys != sorted(keys):  # newest first
        pos = next((i for i, v in enumerate(versions) if v and _sort_key(v) < new), len(versions))
    else:
        pos = next((i for i, v in enumerate(versions) if v and _sort_key(v) > new), len(versions))
    items = found[1].value if isinstance(found[1], yaml.SequenceNode) else []
    block = items and not getattr(found[1], "flow_style", False)
    indent = len(dash_prefix(text, "pythons", items[0])) if block else 4
    return insert_item(text, root, "pythons", pos,
                        _new_python_item(root, version, unsigned, indent, newline(text)))


def _deadsnakes_clashes(text: str, file: str, minor: str) -> list[str]:
    """Distros whose deadsnakes cells for ``minor`` cannot exist (the distro ships it)."""
    data, _ = loader.parse_yaml(text, file)
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


def _model(text: str, file: str) -> ImagesConfig | None:
    data, _ = loader.parse_yaml(text, file)
    try:
        return ImagesConfig.model_validate(data)
    except ValidationError:
        return None  # full validation reports it


def _rule_minor_key(item: yaml.Node) -> Version | None:
    s = scalar(item, "python")
    return None if s is None else _sort_key(s.value.rstrip("t"))


def _restrict_methods(text: str, file: str, minor: str, methods: Sequence[str]) -> tuple[str, list[str]]:
    """Exclude rules ``{python: "<minor>", method: M}`` for every method the matrix would build
    ``minor`` with but ``methods`` does not name (method order), placed before the first rule
    about a later minor or about no minor (the layout retire-python removes them from)."""
    cfg = _model(text, file)
    if cfg is None:
        return text, []
    offered = {c.method for c in matrix.expand(cfg) if c.minor == minor}
    for m in methods:
        if m not in offered:
            have = ", ".join(x for x in METHODS if x in offered) or "none"
            raise UsageError(f"--method {m}: no distro of {file} builds Python {minor} with {m} "
                             f"(distros.<name>.methods, include); methods it would have: {have}")
    notes: list[str] = []
    new = Version(minor)
    for m in (x for x in METHODS if x in offered and x not in methods):
        root = compose(text, file)
        found = top(root, "exclude")
        items = found[1].value if found and isinstance(found[1], yaml.SequenceNode) else []
        pos = next((i for i, it in enumerate(items)
                    if (k := _rule_minor_key(it)) is None or k > new), len(items))
        rule = f'{{python: "{minor}", method: {m}}}'
        text = insert_item(text, root, "exclude", pos, rule,
                            after_keys=("include", "max_pythons", "pythons"))
        notes.append(f"exclude += {rule} (--method {', '.join(methods)})")
    return text, notes


def _add_minor_default(text: str, file: str, minor: str) -> tuple[str, list[str]]:
    """tags.defaults["<minor>"] when the default distro/method has no cell of ``minor`` and one
    distro/method has them all (the only place its short tags can come from)."""
    cfg = _model(text, file)
    if cfg is None or minor in cfg.tags.defaults:
        return text, []
    cells = [c for c in matrix.expand(cfg) if c.minor == minor]
    pairs = {(c.distro, c.method) for c in cells}
    if not cells or matrix.default_method(cfg, minor, cells) is not None or len(pairs) != 1:
        return text, []
    ((distro, method),) = pairs
    entry = f'"{minor}": {{distro: {distro}, method: {method}}}'
    root = compose(text, file)
    tags = top(root, "tags")
    if tags is None or not isinstance(tags[1], yaml.MappingNode) or tags[1].flow_style:
        return text, [f"tags.defaults: not added (tags: is not a block mapping): add {entry} by hand"]
    nl = newline(text)
    defaults = top(tags[1], "defaults")
    if defaults is None:
        indent = " " * tags[1].value[0][0].start_mark.column
        keys = [kv for kv in tags[1].value if isinstance(kv[0], yaml.ScalarNode)
                and kv[0].value in ("default_distro", "default_method")]
        at = (max(line_end(text, node_end(text, v)) for _k, v in keys) if keys
              else line_start(text, tags[1].value[0][0].start_mark.index))
        block = f"{indent}defaults:{nl}{indent}  {entry}{nl}"
    elif isinstance(defaults[1], yaml.MappingNode) and not defaults[1].flow_style and defaults[1].value:
        entries = defaults[1].value
        indent = " " * entries[0][0].start_mark.column
        later = [k for k, _v in entries
                 if isinstance(k, yaml.ScalarNode) and _sort_key(k.value.rstrip("t")) > Version(minor)]
        at = (line_start(text, later[0].start_mark.index) if later
              else line_end(text, node_end(text, entries[-1][1])))
        block = f"{indent}{entry}{nl}"
    else:
        return text, [f"tags.defaults: not added (not a block mapping): add {entry} by hand"]
    text = text[:at] + block + text[at:]
    return text, [f"tags.defaults += {entry} (the only distro/method with {minor}: its short tags)"]


def add_python_text(text: str, version: str, file: str = "images.yaml",
                    methods: Sequence[str] = (), unsigned: str | None = None,
                    ) -> tuple[str, list[str]]:
    """Add ``version`` ("3.15" or "3.15.2") to images.yaml; (new text, notes for the report).

    Where a distro ships that minor itself and uses the deadsnakes PPA (which then does not
    publish it), the matching exclude rule is added too, with the same wording as a hand
    written one, so that retire + add of such a minor gives the original bytes back.
    ``methods`` (``--method``) keeps the minor to those build methods: an exclude rule
    ``{python: X.Y, method: M}`` for each other method, as retire-python removes them. When
    the default distro/method has no cell of the minor and a single distro/method has all of
    them, tags.defaults gets that one (retire-python removes it too). Comments on the lines
    retire-python removed are not recovered.
    """
    minor = minor_of(version)
    new = insert_python_text(text, version, file, unsigned)
    notes = [f'pythons += "{version}"' + (f" (unsigned: {unsigned})" if unsigned else "")]
    if methods:
        new, more = _restrict_methods(new, file, minor, methods)
        notes += more
    for distro in _deadsnakes_clashes(new, file, minor):
        root = compose(new, file)
        rule = f'{{distro: {distro}, python: "{minor}", method: deadsnakes}}'
        found = top(root, "exclude")
        pos = len(found[1].value) if found and isinstance(found[1], yaml.SequenceNode) else 0
        prefix = "  - "
        pythons = top(root, "pythons")
        if pythons and isinstance(pythons[1], yaml.SequenceNode) and not pythons[1].flow_style:
            prefix = dash_prefix(new, "pythons", pythons[1].value[0])
        new = insert_item(new, root, "exclude", pos, rule, f"   # {distro} ships {minor} itself",
                           prefix, after_keys=("include", "max_pythons", "pythons"))
        notes.append(f"exclude += {rule} ({distro} ships {minor} itself; "
                     "the deadsnakes PPA does not publish it there)")
    new, more = _add_minor_default(new, file, minor)
    return new, notes + more


def retire_python_text(text: str, minor: str, file: str = "images.yaml") -> tuple[str, list[str]]:
    """Remove ``minor`` from pythons and every include/exclude rule naming it (or its
    free-threaded cells, "<minor>t").

    Returns (new text, notes for the report). A rule list that becomes empty is removed
    with its key (include/exclude default to none).
    """
    root = compose(text, file)
    versions = _python_versions(root)
    idx = [i for i, v in enumerate(versions) if v and _minor_or_none(v) == minor]
    if not idx:
        raise UsageError(f"Python {minor} is not in {file}")
    if len(idx) == len(versions):
        raise UsageError(f"Python {minor} is the only Python in {file}; cannot retire it")
    notes: list[str] = []
    for i in reversed(idx):
        notes.insert(0, f'pythons -= "{versions[i]}"')
        text = remove_item(text, root, "pythons", i)
        root = compose(text, file)
    for key in ("include", "exclude"):
        while True:
            found = top(root, key)
            if found is None or not isinstance(found[1], yaml.SequenceNode):
                break
            hits = [i for i, item in enumerate(found[1].value)  # 3.13 and its 3.13t cells
                    if (s := scalar(item, "python")) is not None and s.value in (minor, f"{minor}t")]
            if not hits:
                break
            notes.append(f"{key} -= {item_text(text, found[1].value[hits[0]])}")
            text = remove_item(text, root, key, hits[0])
            root = compose(text, file)
    for name in (minor, f"{minor}t"):
        edited = _remove_minor_default(text, root, name)
        if edited != text:
            notes.append(f'tags.defaults -= "{name}"')
            text, root = edited, compose(edited, file)
    return text, notes


def _remove_minor_default(text: str, root: yaml.MappingNode, minor: str) -> str:
    """``text`` without tags.defaults[minor] (block style; ``defaults:`` too when it empties)."""
    tags = top(root, "tags")
    defaults = top(tags[1], "defaults") if tags and isinstance(tags[1], yaml.MappingNode) else None
    if defaults is None or not isinstance(defaults[1], yaml.MappingNode) or defaults[1].flow_style:
        return text
    entries = defaults[1].value
    hit = next(((k, v) for k, v in entries if isinstance(k, yaml.ScalarNode) and k.value == minor), None)
    if hit is None:
        return text
    if len(entries) == 1:
        start, end = line_start(text, defaults[0].start_mark.index), line_end(text, node_end(text, hit[1]))
    else:
        start, end = line_start(text, hit[0].start_mark.index), line_end(text, node_end(text, hit[1]))
    return text[:start] + text[end:]


def _minor_or_none(version: str) -> str | None:
    try:
        return minor_of(version)
    except ValueError:
        return None
