"""Text edits of images.yaml for add-python / retire-python.

Careful edits of the ``pythons``/``include``/``exclude`` blocks located with the YAML
composer's marks, so comments, key order, anchors and flow-style lists stay byte-identical
(a ruamel.yaml round trip reflows the long flow lists and re-indents sequences).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence

import yaml
from packaging.version import Version
from pydantic import ValidationError

from orchestrator.config import loader, matrix
from orchestrator.config.axes import METHODS
from orchestrator.config.model import ImagesConfig, minor_of
from orchestrator.errors import UsageError

# ============================================================================ text edits
#
# Positions come from yaml.compose (marks are character offsets into the text). Every edit
# works on whole lines (block style) or on the item text (flow style) and re-composes the
# document before the next edit, so offsets never go stale.


def _compose(text: str, file: str) -> yaml.MappingNode:
    loader.parse_yaml(text, file)  # raises ConfigError (with a line) on YAML errors
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


def _new_python_item(root: yaml.MappingNode, version: str, unsigned: str | None = None,
                     indent: int = 4, nl: str = "\n") -> str:
    """``version: "3.15"`` (or ``{version: "3.15"}``) styled like the existing entries; with
    ``unsigned``, its ``unsigned: "<reason>"`` (a JSON string: a valid YAML double-quoted
    scalar whatever the reason holds) on the next line, ``indent`` deep (block style)."""
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
    root = _compose(text, file)
    found = _top(root, "pythons")
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
    indent = len(_dash_prefix(text, "pythons", items[0])) if block else 4
    return _insert_item(text, root, "pythons", pos,
                        _new_python_item(root, version, unsigned, indent, _newline(text)))


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
    s = _scalar(item, "python")
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
        root = _compose(text, file)
        found = _top(root, "exclude")
        items = found[1].value if found and isinstance(found[1], yaml.SequenceNode) else []
        pos = next((i for i, it in enumerate(items)
                    if (k := _rule_minor_key(it)) is None or k > new), len(items))
        rule = f'{{python: "{minor}", method: {m}}}'
        text = _insert_item(text, root, "exclude", pos, rule,
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
    root = _compose(text, file)
    tags = _top(root, "tags")
    if tags is None or not isinstance(tags[1], yaml.MappingNode) or tags[1].flow_style:
        return text, [f"tags.defaults: not added (tags: is not a block mapping): add {entry} by hand"]
    nl = _newline(text)
    defaults = _top(tags[1], "defaults")
    if defaults is None:
        indent = " " * tags[1].value[0][0].start_mark.column
        keys = [kv for kv in tags[1].value if isinstance(kv[0], yaml.ScalarNode)
                and kv[0].value in ("default_distro", "default_method")]
        at = (max(_line_end(text, _end(text, v)) for _k, v in keys) if keys
              else _line_start(text, tags[1].value[0][0].start_mark.index))
        block = f"{indent}defaults:{nl}{indent}  {entry}{nl}"
    elif isinstance(defaults[1], yaml.MappingNode) and not defaults[1].flow_style and defaults[1].value:
        entries = defaults[1].value
        indent = " " * entries[0][0].start_mark.column
        later = [k for k, _v in entries
                 if isinstance(k, yaml.ScalarNode) and _sort_key(k.value.rstrip("t")) > Version(minor)]
        at = (_line_start(text, later[0].start_mark.index) if later
              else _line_end(text, _end(text, entries[-1][1])))
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
    new, more = _add_minor_default(new, file, minor)
    return new, notes + more


def retire_python_text(text: str, minor: str, file: str = "images.yaml") -> tuple[str, list[str]]:
    """Remove ``minor`` from pythons and every include/exclude rule naming it (or its
    free-threaded cells, "<minor>t").

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
            hits = [i for i, item in enumerate(found[1].value)  # 3.13 and its 3.13t cells
                    if (s := _scalar(item, "python")) is not None and s.value in (minor, f"{minor}t")]
            if not hits:
                break
            notes.append(f"{key} -= {_item_text(text, found[1].value[hits[0]])}")
            text = _remove_item(text, root, key, hits[0])
            root = _compose(text, file)
    for name in (minor, f"{minor}t"):
        edited = _remove_minor_default(text, root, name)
        if edited != text:
            notes.append(f'tags.defaults -= "{name}"')
            text, root = edited, _compose(edited, file)
    return text, notes


def _remove_minor_default(text: str, root: yaml.MappingNode, minor: str) -> str:
    """``text`` without tags.defaults[minor] (block style; ``defaults:`` too when it empties)."""
    tags = _top(root, "tags")
    defaults = _top(tags[1], "defaults") if tags and isinstance(tags[1], yaml.MappingNode) else None
    if defaults is None or not isinstance(defaults[1], yaml.MappingNode) or defaults[1].flow_style:
        return text
    entries = defaults[1].value
    hit = next(((k, v) for k, v in entries if isinstance(k, yaml.ScalarNode) and k.value == minor), None)
    if hit is None:
        return text
    if len(entries) == 1:
        start, end = _line_start(text, defaults[0].start_mark.index), _line_end(text, _end(text, hit[1]))
    else:
        start, end = _line_start(text, hit[0].start_mark.index), _line_end(text, _end(text, hit[1]))
    return text[:start] + text[end:]


def _minor_or_none(version: str) -> str | None:
    try:
        return minor_of(version)
    except ValueError:
        return None


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))
