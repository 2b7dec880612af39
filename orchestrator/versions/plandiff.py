"""The plan before and after an edit of images.yaml: images and moving tags added/removed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import matrix
from orchestrator.config.model import Loaded
from orchestrator.planning import plan

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


def _changes(loaded: Loaded, p: plan.Plan, ids: set[str]) -> tuple[ImageChange, ...]:
    placeholder: Any = _DatePlaceholder()
    out = []
    for img in p.images:
        if img.id in ids:
            _moving, immutable = matrix.tags_for(loaded.config, img.cell, img.version, placeholder)
            out.append(ImageChange(img.id, img.version, img.tags, immutable))
    return tuple(out)


def plan_diff(before_loaded: Loaded, before: plan.Plan,
              after_loaded: Loaded, after: plan.Plan) -> PlanDiff:
    b_ids, a_ids = {i.id for i in before.images}, {i.id for i in after.images}
    b_tags = {t for i in before.images for t in i.tags}
    a_tags = {t for i in after.images for t in i.tags}
    return PlanDiff(
        _changes(after_loaded, after, a_ids - b_ids),
        _changes(before_loaded, before, b_ids - a_ids),
        tuple(sorted(a_tags - b_tags)),
        tuple(sorted(b_tags - a_tags)),
    )
