"""``base-arches`` and ``base-state``: what provision-host.sh's step images does with each suite's
base image. Python decides; bash does (mmdebstrap, docker import/push, imagetools, rm).

Architectures (``wanted_arches``): amd64 always; arm64 when ORCH_ARM64_SUITES asks for it or
the registry has the suite's ``<tag>-arm64`` from an earlier run. A suite's architectures are
never narrowed: a new index digest would invalidate every build cache of the suite. (Bash then
drops arm64 for an Ubuntu suite no archive serves it for, with a warning.)

The recipe (``recipe``): ``BASE_RECIPE`` (bash's version of how it makes a rootfs), the
architectures and, for an Ubuntu suite, the pockets its sources list (a pocket back in sync
is a new base): ``4 amd64 arm64``, ``4 amd64 pockets: noble noble-updates noble-security``.
The marker ``$ORCH_HOST_STATE/rootfs/<suite>.recipe`` holds the recipe of the suite's index
in the registry. Against it (``decide``):

  skip     the marker says this recipe and the registry has the index: nothing to do;
  push     the marker says this recipe but the index is not in the registry: import every
           architecture's rootfs again and push the index;
  index    the marker differs only in its architectures (more of them): the rootfs kept, a
           new index (bash prints "base recipe changed" for this and for rebuild);
  rebuild  the recipe or the pockets changed: the suite's rootfs directories and local
           images go first, everything is made again.

"Only in its architectures" is the comparison bash made with ``sed -E 's/ (amd64|arm64)//g'``
on both sides, and the marker is read as ``$(cat marker)`` read it: missing or unreadable is
empty, trailing newlines dropped.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hostkit.common import HostkitError
from hostkit.matrix import Suite

ARCHES = ("amd64", "arm64")
_ANY_ARCH = re.compile(r" (amd64|arm64)")
# the rootfs directories and local images a rebuild removes: "" (the layout before recipe 3's
# one rootfs per architecture), then one per architecture
_LAYOUTS = ("", "-amd64", "-arm64")


class Action(enum.StrEnum):
    SKIP = "skip"
    PUSH = "push"
    INDEX = "index"
    REBUILD = "rebuild"


@dataclass(frozen=True)
class BasePlan:
    """What step images does with one suite; ``lines`` is what ``base-state`` prints."""

    action: Action
    recipe: str  # what the marker says once the index is pushed
    digest: str = ""  # skip: the index's digest in the registry
    remove: tuple[tuple[str, str], ...] = ()  # rebuild: ("rootfs", dir name) / ("image", ref)

    def lines(self) -> list[str]:
        out = [f"action {self.action}", f"recipe {self.recipe}"]
        if self.digest:
            out.append(f"digest {self.digest}")
        return out + [f"{kind} {what}" for kind, what in self.remove]


def wanted_arches(suite: Suite, arm64_asked: Iterable[str],
                  has_tag: Callable[[str, str], bool]) -> tuple[str, ...]:
    """amd64, and arm64 when asked for or already in the registry (``has_tag(repo, tag)``, asked
    only when it was not asked for)."""
    if suite.name in set(arm64_asked) or has_tag(suite.repo, f"{suite.tag}-arm64"):
        return ARCHES
    return ARCHES[:1]


def recipe(version: str, arches: Sequence[str], pockets: Sequence[str] | None) -> str:
    """The marker's text: ``4 amd64 arm64``, plus ``pockets: ...`` for an Ubuntu suite."""
    unknown = [a for a in arches if a not in ARCHES]
    if not arches or unknown:
        raise HostkitError(f"architectures {' '.join(arches)!r}: expected some of {', '.join(ARCHES)}")
    text = f"{version} {' '.join(arches)}"
    return text if pockets is None else f"{text} pockets: {' '.join(pockets)}"


def without_arches(text: str) -> str:
    """``sed -E 's/ (amd64|arm64)//g'``: the recipe with its architectures left out."""
    return _ANY_ARCH.sub("", text)


def read_marker(path: Path) -> str:
    """``$(cat marker 2>/dev/null)``: the text without its trailing newlines, "" when missing."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data.replace(b"\0", b"").decode("utf-8", "surrogateescape").rstrip("\n")


def decide(suite: Suite, wanted: str, marker: str, index_digest: Callable[[], str | None],
           rootfs: Path, registry: str) -> BasePlan:
    """The plan for ``suite`` whose recipe is now ``wanted`` and whose marker says ``marker``;
    ``index_digest()`` (the registry's digest of the index tag, None: no such tag) is asked only
    when the marker is current. ``rootfs``: the directory of the rootfs directories."""
    if marker == wanted:
        digest = index_digest()
        return BasePlan(Action.SKIP, wanted, digest) if digest else BasePlan(Action.PUSH, wanted)
    if without_arches(marker) == without_arches(wanted):
        return BasePlan(Action.INDEX, wanted)
    remove: list[tuple[str, str]] = []
    for layout in _LAYOUTS:
        if (rootfs / f"{suite.name}{layout}").is_dir():
            remove.append(("rootfs", f"{suite.name}{layout}"))
        remove.append(("image", f"{registry}/{suite.repo}:{suite.tag}{layout}"))
    return BasePlan(Action.REBUILD, wanted, remove=tuple(remove))


def pockets_for(suite: Suite, pockets: str | None) -> list[str] | None:
    """``--pockets`` as the recipe takes it: an Ubuntu suite's bases list their pockets (given,
    even empty), a Debian suite's do not (not given)."""
    if suite.family == "ubuntu" and pockets is None:
        raise HostkitError(f"{suite.name} is an Ubuntu suite: its recipe names its pockets (--pockets)")
    if suite.family != "ubuntu" and pockets is not None:
        raise HostkitError(f"{suite.name} is a {suite.family} suite: its recipe names no pockets")
    return None if pockets is None else pockets.split()
