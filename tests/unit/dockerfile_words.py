"""A small Dockerfile reader for the property tests: instructions and their words.

``instructions`` splits a Dockerfile as BuildKit's parser does for what the templates produce:
comment and blank lines between instructions are skipped, a line ending in ``\\`` continues the
instruction (comment and blank lines inside a continuation are dropped), and a heredoc
(``<<EOF``, ``<<-EOF``, ``<<"EOF"`` in an unquoted word) swallows the lines up to its
terminator. ``words`` splits one instruction into words the way a POSIX shell (and the
Dockerfile word processor for ENV/LABEL) reads them: quotes removed, escapes applied, shell
operators (``; & | < > ( )``) as words of their own, and every *unescaped* ``$`` or backtick
(an expansion) kept with a NUL before it, so that a value that expands or leaves its word
reads differently from the same value written literally.
"""

from __future__ import annotations

import re

_CONTINUATION = re.compile(r"\\[ \t]*$")
_OPERATORS = set(";&|<>()")
EXPANSION = "\x00"


def instructions(text: str) -> list[str]:
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = []
        while _CONTINUATION.search(line) and i < len(lines):
            parts.append(_CONTINUATION.sub("", line))
            line = lines[i]
            i += 1
            while (not line.strip() or line.lstrip().startswith("#")) and i < len(lines):
                line = lines[i]
                i += 1
        parts.append(line)
        instruction = "".join(parts)
        for tag in _heredocs(instruction):
            while i < len(lines) and lines[i].strip() != tag:
                i += 1
            i += 1
        out.append(instruction)
    return out


def _heredocs(instruction: str) -> list[str]:
    """Terminators of the heredocs of a RUN/COPY/ADD: words that start with an unquoted <<
    (BuildKit reads the words with their quotes kept, so '<<A' or "<<A" is no heredoc)."""
    keyword = instruction.split(None, 1)[0].upper() if instruction.split() else ""
    if keyword not in ("RUN", "COPY", "ADD"):
        return []
    tags = []
    for word in _raw_words(instruction):
        m = re.fullmatch(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?", word)
        if m:
            tags.append(m.group(1))
    return tags


def _raw_words(instruction: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes as written."""
    out, word, quote, i = [], "", "", 0
    while i < len(instruction):
        ch = instruction[i]
        if ch == "\\" and quote != "'":
            word += instruction[i:i + 2]
            i += 2
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in " \t":
            if word:
                out.append(word)
            word = ""
            i += 1
            continue
        word += ch
        i += 1
    return [*out, word] if word else out


def words(instruction: str) -> list[str]:
    """RUN is read as bash reads it; every other instruction as the Dockerfile word processor
    does (only $ expands; no operators, globs or backticks)."""
    shell = instruction.split(None, 1)[:1] == ["RUN"]
    out: list[str] = []
    word: list[str] | None = None
    i, n = 0, len(instruction)
    while i < n:
        ch = instruction[i]
        if ch in " \t":
            if word is not None:
                out.append("".join(word))
                word = None
            i += 1
            continue
        if shell and ch in _OPERATORS:
            if word is not None:
                out.append("".join(word))
                word = None
            j = i
            while j < n and instruction[j] == ch and ch in "&|<>":
                j += 1
            out.append(instruction[i:max(j, i + 1)])
            i = max(j, i + 1)
            continue
        word = word if word is not None else []
        if ch == "\\":
            word.append(instruction[i + 1:i + 2])
            i += 2
        elif ch == "'":
            end = instruction.find("'", i + 1)
            end = n if end < 0 else end
            word.append(instruction[i + 1:end])
            i = end + 1
        elif ch == '"':
            i = _double_quoted(instruction, i + 1, word, shell)
        else:
            # Unquoted: expansions, globs and brace lists; a comment or ~ at the start of a word.
            special = ch == "$" or (shell and (ch in "`*?[{" or (ch in "#~" and not word)))
            word.append(EXPANSION + ch if special else ch)
            i += 1
    if word is not None:
        out.append("".join(word))
    return out


def _double_quoted(text: str, i: int, word: list[str], shell: bool) -> int:
    special = "$`" if shell else "$"
    while i < len(text) and text[i] != '"':
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '\\"' + special:
            word.append(text[i + 1])
            i += 2
            continue
        word.append(EXPANSION + ch if ch in special else ch)
        i += 1
    return i + 1
