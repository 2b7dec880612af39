"""The interpreter-hardening smoke check: the policy every ELF file of a tree we compiled must
meet, and the check that reads the tree from the image (no shell or tool in it)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from orchestrator.planning.plan import PlannedImage
from orchestrator.smoke import elf
from orchestrator.smoke.suite import CheckResult, check_name

if TYPE_CHECKING:
    from orchestrator.engine import Engine


SHIM_WAIVER = "the stable-ABI shim libpython3.so has no code of its own (it re-exports libpython3.X)"
LTO_WAIVER = ("LTO: gcc records the link-time options, not each function's, and a small module "
              "without arrays has no canary to import; the interpreter itself must show one")


def hardening_policy(disabled: Iterable[str], *, lto: bool,
                     frame_pointers: bool) -> elf.Policy:
    """What every ELF file of a tree we compiled must have. Stack-clash protection, frame
    pointers and cf-protection leave no trace but the -frecord-gcc-switches record, which LTO
    builds make untrustworthy: those are required only without LTO (the label still says what
    could be shown). build.hardening.disable waives a feature for every file."""
    required = set(elf.DEFAULT_REQUIRED)
    # libpython3.so (shared builds, e.g. pyenv's python-build) is the stable-ABI shim: no code
    # of its own, only a DT_NEEDED on libpython3.X.so, so nothing to protect or record.
    waivers = tuple(elf.Waiver(prop, SHIM_WAIVER, "lib/libpython3.so")
                    for prop in ("stack-protector", "stack-clash", "cf-protection",
                                 "frame-pointers"))
    if lto:
        waivers += (elf.Waiver("stack-protector", LTO_WAIVER, "lib/python*/lib-dynload/*"),)
    else:
        required |= {"stack-clash", "cf-protection"} | ({"frame-pointers"} if frame_pointers else set())
    return elf.Policy(required=frozenset(required - set(disabled)), waivers=waivers)


def tree_hardening(engine: Engine, image_ref: str, prefix: str, platform: str | None,
                   policy: elf.Policy | None = None) -> elf.TreeResult:
    """Read the interpreter, libpython and every lib-dynload module of the image's tree
    (through the engine's archive API: no shell or tool in the image) and check them."""
    data = engine.read_tree(image_ref, prefix, platform)
    files = elf.files_from_tar(io.BytesIO(data), prefix.rstrip("/").rsplit("/", 1)[-1])
    return elf.check_tree(files, policy)


def hardening_check(engine: Engine, image_ref: str, img: PlannedImage, prefix: str,
                    platform: str | None, policy: elf.Policy,
                    label: str | None = None) -> CheckResult:
    """interpreter-hardening: every ELF file of the tree has the required protections."""
    start = time.monotonic()
    result = tree_hardening(engine, image_ref, prefix, platform, policy)
    problem = "; ".join(str(f) for f in result.failures[:20])
    if len(result.failures) > 20:
        problem += f"; and {len(result.failures) - 20} more"
    return CheckResult(img.id, check_name("interpreter-hardening", label), result.ok, problem,
                       result.summary, time.monotonic() - start)
