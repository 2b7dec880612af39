"""Careful text edits of a YAML document (images.yaml): items inserted into and removed from
top-level sequences, located with the YAML composer's marks, so comments, key order, anchors
and flow-style lists stay byte-identical (a ruamel.yaml round trip reflows the long flow lists
and re-indents sequences); and the unified diff of an edit.
"""

from __future__ import annotations

import difflib
import re

import yaml

from orchestrator.config import loader
from orchestrator.errors import UsageError

# Positions come from yaml.compose (marks are character offsets into the text). Every edit
# works on whole lines (block style) or on the item text (flow style) and re-composes the
# document before the next edit, so offsets never go stale.


def compose(text: str, file: str) -> yaml.MappingNode:
    loader.parse_yaml(text, file)  # raises ConfigError (with a line) on YAML errors
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise UsageError(f"{file}: the top level is not a block mapping; edit it by hand")
    return root


def top(root: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def line_end(text: str, i: int) -> int:
    """Index just past the newline ending the line that holds index ``i``."""
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def node_end(text: str, node: yaml.Node) -> int:
    """Index just past the last character of ``node``'s own text (not trailing space/newlines)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = int(node.end_mark.index)
    elif isinstance(node, yaml.MappingNode):
        end = max((node_end(text, n) for kv in node.value for n in kv), default=node.start_mark.index)
    elif isinstance(node, yaml.SequenceNode):
        end = max((node_end(text, n) for n in node.value), default=node.start_mark.index)
    else:  # pragma: no cover - compose only yields the three node kinds
        end = int(node.end_mark.index)
    while end > node.start_mark.index and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def dash_prefix(text: str, seq_key: str, item: yaml.Node) -> str:
    """The ``"  - "`` before a block sequence item (what a new sibling line starts with)."""
    start = item.start_mark.index
    prefix = text[line_start(text, start):start]
    if not re.fullmatch(r"[ \t]*-[ \t]+", prefix):
        raise UsageError(f"{seq_key}: an item is not laid out as '  - ...' on its own line "
                         f"(line {item.start_mark.line + 1}); edit it by hand")
    return prefix


def _block_item_span(text: str, seq_key: str, item: yaml.Node) -> tuple[int, int]:
    """(start, end) of the whole lines holding one block sequence item."""
    dash_prefix(text, seq_key, item)
    return line_start(text, item.start_mark.index), line_end(text, node_end(text, item))


def item_text(text: str, item: yaml.Node) -> str:
    return " ".join(text[item.start_mark.index:node_end(text, item)].split())


def scalar(node: yaml.Node, key: str) -> yaml.ScalarNode | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
                return v
    return None


def insert_item(text: str, root: yaml.MappingNode, key: str, pos: int, item: str,
                 comment: str = "", prefix: str = "  - ",
                 after_keys: tuple[str, ...] = ()) -> str:
    """Insert ``item`` (one line of YAML) at index ``pos`` of the top-level sequence ``key``.

    A missing key is added as a block sequence after the last of ``after_keys`` present.
    ``comment`` only goes on block-style lines (``   # why``).
    """
    nl = newline(text)
    found = top(root, key)
    if found is None:
        anchors = [kv for kv in (top(root, k) for k in after_keys) if kv is not None]
        if not anchors:
            raise UsageError(f"cannot place a new {key}: block; edit it by hand")
        at = max(line_end(text, node_end(text, v)) for _k, v in anchors)
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
        at = node_end(text, items[-1])
        return text[:at] + ", " + item + text[at:]
    ref = items[pos] if pos < len(items) else items[-1]
    line = dash_prefix(text, key, ref) + item + comment + nl
    if pos == 0:  # above the comment lines directly over the first item (they belong to it)
        at = line_start(text, items[0].start_mark.index)
        while at > 0:
            above = line_start(text, at - 1)
            if not text[above:at].lstrip().startswith("#") or above <= found[0].start_mark.index:
                break
            at = above
    else:
        at = line_end(text, node_end(text, items[pos - 1]))
        if at == len(text) and not text.endswith("\n"):
            line = nl + line[: -len(nl)]
    return text[:at] + line + text[at:]


def remove_item(text: str, root: yaml.MappingNode, key: str, index: int) -> str:
    """Remove item ``index`` of the top-level sequence ``key``; the key too when it empties."""
    found = top(root, key)
    assert found is not None
    k, seq = found
    assert isinstance(seq, yaml.SequenceNode)
    items = seq.value
    if len(items) == 1:  # drop "key:" and its list (include/exclude default to none)
        start = line_start(text, k.start_mark.index)
        end = line_end(text, node_end(text, seq))
        blank_before = start == 0 or not text[line_start(text, start - 1):start].strip()
        after = text[end:line_end(text, end)]
        if blank_before and after and not after.strip():
            end += len(after)  # do not leave two blank lines where the block was
        return text[:start] + text[end:]
    if seq.flow_style:
        if index < len(items) - 1:
            return text[:items[index].start_mark.index] + text[items[index + 1].start_mark.index:]
        return text[:node_end(text, items[index - 1])] + text[node_end(text, items[index]):]
    start, end = _block_item_span(text, key, items[index])
    return text[:start] + text[end:]


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name}", f"b/{name}"))
