"""Reading images.yaml / images.lock safely: any bytes in, plain data or one-line errors out.

- the file is read as UTF-8 only (UTF-16, binary, directories, symlink loops: one line each);
- YAML is composed with PyYAML's SafeLoader (no float resolution: 3.10 stays "3.10"), then
  walked here, so that every key path gets its line number;
- aliases are bounded: the expanded document may hold at most MAX_NODES nodes and no alias may
  contain itself (a 10-line "billion laughs" is refused at once, not expanded for minutes);
- mapping keys are always their text as written (`on:` is the key "on", not True); complex
  (mapping or list) keys are refused; merge keys (`<<: *anchor`) are supported;
- scalars YAML types as something else than a string are remembered (``Lines.scalars``), so
  that "expected a string" can say "quote it".
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import ConfigError, raise_all

Path_ = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"[^\s\x00-\x1f\x7f\"]+")
MAX_NODES = 100_000
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
KINDS = {"tag:yaml.org,2002:int": "a number", "tag:yaml.org,2002:bool": "a boolean",
         "tag:yaml.org,2002:null": "null (no value)", "tag:yaml.org,2002:timestamp": "a date",
         "tag:yaml.org,2002:binary": "binary data"}


class Lines(dict[Path_, int]):
    """key path -> line; ``scalars``: key path -> (YAML type, text as written) of non-strings."""

    def __init__(self) -> None:
        super().__init__()
        self.scalars: dict[Path_, tuple[str, str]] = {}


class Loader(yaml.SafeLoader):
    """SafeLoader without float resolution: 3.10 stays the string "3.10", never 3.1."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


def fmt(path: Path_) -> str:
    """("distros", "bookworm", "methods", 0) -> distros.bookworm.methods[0]; odd keys are quoted."""
    text = ""
    for p in path:
        if isinstance(p, int):
            text += f"[{p}]"
            continue
        name = p if p and _PLAIN_KEY.fullmatch(p) else json.dumps(p)
        text += f".{name}" if text else name
    return text


def line(lines: Mapping[Path_, int], path: Path_) -> int | None:
    """Line of the deepest known key on ``path``."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


class Problems:
    """The one collector of the problems found in a YAML file (images.yaml, images.lock), for
    every check: each problem becomes one ConfigError, at the line of the deepest key on its
    path that ``lines`` knows (or at the line the parser saw it on), so that a file with three
    bad values gets three lines, not one per run; and the warnings, one line each. A check
    reports with ``report(path, problem, fix)``, ``report.add(path, grammar_answer)`` or
    ``report.warn(path, text)``."""

    def __init__(self, file: str, lines: Mapping[Path_, int] | None = None) -> None:
        self.file = file
        self.lines: Mapping[Path_, int] = {} if lines is None else lines
        self.problems: list[ConfigError] = []
        self.warnings: list[str] = []

    def error(self, path: Path_, problem: str, fix: str, at_line: int | None = None) -> ConfigError:
        """The ConfigError of ``problem`` at ``path`` (on ``at_line`` when given), not kept."""
        return ConfigError(self.file, fmt(path), problem, fix,
                           line(self.lines, path) if at_line is None else at_line)

    def __call__(self, path: Path_, problem: str, fix: str, *, at_line: int | None = None) -> None:
        self.problems.append(self.error(path, problem, fix, at_line))

    def add(self, path: Path_, problem: tuple[str, str] | None) -> None:
        """A grammar check's answer: (problem, fix), or None when there is none."""
        if problem:
            self(path, *problem)

    def each(self, path: Path_, values: Iterable[str],
             check: Callable[[str], tuple[str, str] | None]) -> None:
        """``check`` over a list of values: a problem at path[i] for each bad one."""
        for i, v in enumerate(values):
            self.add(path + (i,), check(v))

    def warn(self, path: Path_, text: str) -> None:
        self.warnings.append(f"{self.file}: {fmt(path)}: {text}")


def read_text(path: Path, fix: str) -> str:
    """The file as UTF-8 text, or a one-line ConfigError naming the file and the fix."""
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found", fix) from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, not a file", fix) from None
    except OSError as exc:
        why = "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc)).lower()
        raise ConfigError(file, "", f"cannot be read ({why})", fix) from None
    return decode(data, file)


def decode(data: bytes, file: str) -> str:
    save = "save it as UTF-8 (without a byte order mark)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and (data[0] == 0 or data[1] == 0)):
        raise ConfigError(file, "", "is UTF-16 (or UTF-32) text, not UTF-8", save)
    if b"\x00" in data:
        raise ConfigError(file, "", "is a binary file, not YAML text", "give the YAML file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(file, "", f"is not UTF-8 (byte 0x{data[exc.start]:02x})", save, line) from None


def parse(text: str, file: str) -> tuple[Any, Lines]:
    """YAML -> plain data plus a map of key path -> line number."""
    lines = Lines()
    try:
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, lines
            _bound(node, file)
            problems = Problems(file, lines)
            data = _Builder(loader, lines, problems).build(node, ())
            raise_all(problems.problems)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        problem = f"YAML syntax error: {exc.problem or exc}"
        raise ConfigError(file, "", problem, "fix the YAML at that line", line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"YAML error: {exc}", "fix the YAML") from None
    except RecursionError:
        raise ConfigError(file, "", "YAML nested too deeply", "flatten the document") from None
    return data, lines


def _bound(root: yaml.Node, file: str) -> None:
    """Refuse documents whose aliases expand to more than MAX_NODES nodes, or into themselves."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(file, "", "YAML alias refers to a node that contains it (recursive alias)",
                              "remove the alias (*name) inside its own anchor (&name)",
                              node.start_mark.line + 1)
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(n) for n in node.value)
        active.discard(key)
        if total > MAX_NODES:
            raise ConfigError(file, "", f"YAML aliases expand to more than {MAX_NODES} nodes "
                              "(an alias bomb?)", "write the values out or use fewer nested aliases",
                              node.start_mark.line + 1)
        sizes[key] = total
        return total

    size(root)


class _Builder:
    def __init__(self, loader: Loader, lines: Lines, problems: Problems) -> None:
        self.loader, self.lines, self.problems = loader, lines, problems

    def problem(self, path: Path_, node: yaml.Node, text: str, fix: str) -> None:
        self.problems(path, text, fix, at_line=node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(n, path + (i,)) for i, n in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path_) -> Any:
        if node.tag != _STR and isinstance(node, yaml.ScalarNode):
            self.lines.scalars[path] = (KINDS.get(node.tag, node.tag), node.value)
        try:
            return self.loader.construct_object(node)
        except (ValueError, OverflowError) as exc:
            if node.tag == "tag:yaml.org,2002:timestamp":
                self.problem(path, node, f"{node.value} is not a valid date ({exc})",
                             "write a real date as YYYY-MM-DD")
            else:
                self.problem(path, node, f"{node.value!r} cannot be read ({exc})", "quote it")
            return None

    def key(self, node: yaml.Node, path: Path_) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            kind = "a mapping" if isinstance(node, yaml.MappingNode) else "a list"
            self.problem(path, node, f"a key is {kind} (complex key)", "use a plain name as the key")
            return None
        return str(node.value)

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        base: dict[str, Any] = {}
        for k_node, v_node in node.value:
            if k_node.tag == _MERGE:
                self.merge(base, v_node, path)
        out: dict[str, Any] = {}
        for k_node, v_node in node.value:
            if k_node.tag == _MERGE:
                continue
            key = self.key(k_node, path)
            if key is None:
                continue
            kpath = path + (key,)
            if key in out:
                self.problem(kpath, k_node, "duplicate key", "keep one of them")
                continue
            out[key] = self.build(v_node, kpath)
            # A key path points at its key's line, not where a block value starts (next line).
            self.lines[kpath] = k_node.start_mark.line + 1
        for key, value in base.items():
            out.setdefault(key, value)
        return out

    def merge(self, out: dict[str, Any], node: yaml.Node, path: Path_) -> None:
        """``<<: *a`` or ``<<: [*a, *b]``: keys not written here come from the anchors (first wins)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.problem(path + ("<<",), src, "a merge key (<<) needs a mapping or a list of mappings",
                             "merge an anchored mapping: <<: *name")
                continue
            for key, value in self.mapping(src, path).items():
                out.setdefault(key, value)
