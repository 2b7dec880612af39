"""The stages a target is built from, read back from a rendered Dockerfile."""

from __future__ import annotations

import fnmatch
import re


def stage_closure(dockerfile_text: str, target: str) -> str:
    """The text of ``target`` and every stage it builds on (FROM, COPY --from, RUN --mount from=),
    in file order.

    Hashing this instead of the whole file keeps a cell's fingerprint stable when an
    unrelated cell's stages change (e.g. another Python version is added).
    """
    stages: dict[str, list[str]] = {}
    order: list[str] = []
    deps: dict[str, set[str]] = {}
    current = ""
    for line in dockerfile_text.splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            args = [w for w in words[1:] if not w.startswith("--")]  # FROM --platform=...
            current = args[2] if len(args) >= 3 and args[1].upper() == "AS" else args[0]
            order.append(current)
            stages[current] = []
            deps[current] = {args[0]}
        if not current:
            continue
        stages[current].append(line)
        for w in words:
            if w.startswith("--from="):
                deps[current].add(w.removeprefix("--from="))
            elif w.startswith("--mount="):  # RUN --mount=type=bind,from=<stage>,...
                deps[current].update(opt.removeprefix("from=") for opt in w.split(",")
                                     if opt.startswith("from="))
    needed: set[str] = set()
    todo = [target]
    while todo:
        s = todo.pop()
        if "${" in s:  # FROM python-X-${BUILDARCH}-to-${TARGETARCH}: every stage it can be
            pattern = re.sub(r"\$\{[^}]*\}", "*", s)
            todo.extend(name for name in stages if fnmatch.fnmatchcase(name, pattern))
            continue
        if s in needed or s not in stages:
            continue
        needed.add(s)
        todo.extend(deps[s])
    return "\n".join("\n".join(stages[s]) for s in order if s in needed) + "\n"
