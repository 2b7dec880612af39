"""The only reader of BuildKit's plain progress output: step headers, which stages ran, what
failed. Build code matches BuildKit's lines here, nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import naming

# A step header: "#12 [python-3.13-source 2/2] RUN ..."; in a multi-platform build BuildKit
# puts the target platform first: "#12 [linux/arm64 python-3.13-source-cross-arm64 2/2] RUN".
PLATFORM_PREFIX = r"(?:[a-z0-9]+/[a-z0-9]+(?:/v\d+)? )?"
STEP = re.compile(rf"^#(\d+) \[{PLATFORM_PREFIX}([^\] ]+) +\d+/\d+\] (RUN|ADD) (.*)$")
_DONE = re.compile(r"^#(\d+) (DONE|CACHED|ERROR)")
_HEADER = re.compile(r"^#\d+ \[[^\]]+\] ")
_EXCERPT = re.compile(r"^ *\d+ \| ")
_ERROR = re.compile(r"^#(\d+) ERROR", re.M)
_TARGET_STAGE = re.compile(r"target stage \"?([\w.-]+)")


def is_progress_line(line: str) -> bool:
    """A line worth showing without -v: a RUN/ADD step starting, or an error."""
    return bool(STEP.match(line)) or " ERROR" in line[:12]


def failed_stage(log_path: Path) -> str | None:
    """The stage of the step that failed, from a build's plain log: "#11 ERROR: ..." names
    vertex 11, whose header "#11 [python-3.13-source 2/2] RUN ..." names its stage."""
    text = log_path.read_text(errors="replace")
    errors = _ERROR.findall(text)
    if errors:
        m = re.search(rf"^#{errors[-1]} \[{PLATFORM_PREFIX}([^\] ]+) +\d+/\d+\]", text, re.M)
        if m:
            return m.group(1)
    m2 = _TARGET_STAGE.search(text)
    return m2.group(1) if m2 else None


@dataclass
class BuildLog:
    """Reads BuildKit plain progress to tell which stages really ran (not CACHED)."""

    lines: list[str] = field(default_factory=list)
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)  # vertex -> (stage, cmd)
    executed: list[tuple[str, str]] = field(default_factory=list)  # (stage, cmd) that ran
    cached: list[tuple[str, str]] = field(default_factory=list)

    def feed(self, line: str) -> None:
        self.lines.append(line)
        m = STEP.match(line)
        if m:
            self.steps[m.group(1)] = (m.group(2), f"{m.group(3)} {m.group(4)}")
            return
        d = _DONE.match(line)
        if d and d.group(1) in self.steps:
            step = self.steps.pop(d.group(1))
            if d.group(2) == "DONE":
                self.executed.append(step)
            elif d.group(2) == "CACHED":
                self.cached.append(step)

    def compiled_stages(self) -> list[str]:
        """The CPython compile stages (native and cross) whose compile step ran in this build."""
        return sorted({stage for stage, cmd in self.executed
                       if naming.is_compile_stage(stage) and cmd.startswith("RUN")
                       and ("./configure" in cmd or "python-build" in cmd)})

    def ran(self, stage: str) -> bool:
        return any(s == stage for s, _ in self.executed)

    def error_summary(self) -> str:
        """The lines that say what went wrong. Step headers (``#7 [stage 1/2] ADD
        --checksum=...``) and BuildKit's Dockerfile excerpt (`` 156 | >>> RUN ...``) echo the
        instructions, not their outcome, so they never count as evidence."""
        said = [ln for ln in self.lines if not (_HEADER.match(ln) or _EXCERPT.match(ln))]
        interesting = [ln for ln in said if "ERROR" in ln or "error:" in ln.lower()
                       or "checksum" in ln.lower() or "digest mismatch" in ln.lower()]
        return "\n".join((interesting or said)[-12:])
