"""How images are compiled and built: the build section of images.yaml (builder, network,
registry cache, interpreter options, hardening) and the profiles (PGO, LTO, flags)."""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import Field

from orchestrator.config.axes import Platform
from orchestrator.config.base import FrozenModel

_MODULE_RE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


Toolchain = Literal["gcc", "clang"]
# The LLVM major each distro's own archive carries as clang-N, llvm-N, lld-N and bolt-N
# (build.llvm overrides it per distro). bookworm: 1:19.1.7-3~deb12u1 (point-release updates);
# trixie: its release; noble: llvm-toolchain-19 in universe (noble-updates); resolute:
# llvm-toolchain-19 1:19.1.7-11 (Launchpad bug 2139024). Not checked by any test: apt decides.
DISTRO_LLVM: dict[str, int] = {"bookworm": 19, "trixie": 19, "noble": 19, "resolute": 19}
# The LLVM the 3.14+ options need: CPython's tail-calling interpreter wants clang 19 or later
# (earlier ones miscompile or lack preserve_none), its JIT's stencils are built with LLVM 19 exactly.
LLVM_FOR_314_OPTIONS = 19
TAIL_CALL_MINOR = (3, 14)  # --with-tail-call-interp and --enable-experimental-jit=yes-off


class Profile(FrozenModel):
    pgo: bool
    lto: bool
    cflags: str = ""
    configure_opts: tuple[str, ...] = ()
    frame_pointers: bool = Field(
        False, description="-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer, as the official "
        "images build (perf and eBPF profilers can walk the stack); costs a few percent (make bench)",
    )
    toolchain: Toolchain = Field(
        "gcc", description="The compiler of the native CPython compiles (method source): clang "
        "is the distro's clang-N (build.llvm), with ThinLTO (--with-lto=thin) when lto is on and "
        "PGO through llvm-profdata. Cross compiles (other platforms) stay on the gcc cross "
        "toolchain, LTO without PGO; python-build cells stay on gcc (pyenv's recipe)",
    )
    bolt: bool = Field(
        False, description="--enable-bolt: llvm-bolt reorders the interpreter after a training "
        "run (toolchain clang, build.native_platform linux/amd64; the distro's bolt-N)",
    )
    tail_call: bool = Field(
        False, description="--with-tail-call-interp: the tail-calling interpreter (toolchain "
        "clang with LLVM 19+, CPython 3.14+; older minors are built without it)",
    )
    jit: Literal["off", "yes-off"] = Field(
        "off", description="yes-off: --enable-experimental-jit=yes-off, the JIT built in and off "
        "unless PYTHON_JIT=1 (toolchain clang with LLVM 19, CPython 3.14+, not the free-threaded "
        "build; older minors are built without it)",
    )


HardeningFeature = Literal["stack-protector", "fortify", "relro", "bind-now", "stack-clash",
                           "cf-protection"]
# images.yaml's names -> dpkg-buildflags' hardening features (DEB_BUILD_MAINT_OPTIONS)
DPKG_HARDENING = {"stack-protector": "stackprotector", "fortify": "fortify", "relro": "relro",
                  "bind-now": "bindnow", "stack-clash": "stackclash",
                  "cf-protection": "cfprotection"}


class Hardening(FrozenModel):
    """Every compile takes the distro's hardening flags from dpkg-buildflags
    (DEB_BUILD_MAINT_OPTIONS=hardening=+all: stack protector strong, _FORTIFY_SOURCE,
    RELRO + BIND_NOW, stack-clash protection, -fcf-protection / branch protection where the
    distro's dpkg knows it), so a distro's policy flows through. PIE is build.pie's choice."""

    disable: dict[HardeningFeature, Annotated[str, Field(min_length=10)]] = Field(
        default_factory=dict,
        description="Features to turn off, each with the reason (at least 10 characters)",
    )


CACHE_FIELDS = ("registry", "repository", "profile", "distro", "cell")


class Cache(FrozenModel):
    """A BuildKit registry cache per cell, shared by every engine (CI runner) that can reach
    the registry. Needs an engine that exports caches: dockerd on the containerd image store
    (the `docker` buildx driver) or a docker-container/remote builder."""

    ref: str = Field(
        "{registry}/{repository}/cache:{profile}-{cell}",
        description="Cache image reference template: {registry} {repository} (publish.*), "
        "{profile}, {distro}, {cell} (a cell id). One ref per cell: an export replaces the "
        "whole ref, so two cells must never share one",
    )
    mode: Literal["min", "max"] = Field(
        "max", description="max also exports the intermediate stages (the CPython compile)"
    )
    export: Literal["ci", "always", "never"] = Field(
        "ci", description="When builds write the cache: ci = when CI is set (override with "
        "--cache-to / --no-cache-export)",
    )
    read_also: tuple[str, ...] = Field(
        (), description="Further refs (same placeholders) every build imports, e.g. another "
        "profile's cache",
    )


class Build(FrozenModel):
    network: Literal["host", "default", "none"] = "host"
    builder: str | None = Field(None, description="buildx builder name (remote BuildKit)")
    cache: Cache | None = Field(None, description="Registry build cache shared by CI runners")
    shared_libpython: bool = Field(
        False, description="--enable-shared; default is a static interpreter (faster)"
    )
    keep_tkinter: bool = False
    precompile: bool = Field(True, description="Ship stdlib bytecode (fast read-only start-up)")
    freeze_modules: tuple[Annotated[str, Field(pattern=_MODULE_RE)], ...] = Field(
        (),
        description="Stdlib modules every start-up imports that CPython does not freeze itself "
        "(e.g. encodings, encodings.aliases, encodings.utf_8, linecache): frozen into the "
        "interpreter by CPython's own Tools/build/freeze_modules.py (method source only); "
        "the .py/.pyc stay on disk for -X frozen_modules=off",
    )
    pie: bool = Field(
        True,
        description="Build the interpreter as a position-independent executable; false compiles "
        "it -fno-pie and links it -no-pie like Debian's own python3: no start-up relocations, "
        "libraries/heap/stack keep ASLR (3.11 and older: only the -no-pie link, their setup.py "
        "would build extension modules -fno-pie)",
    )
    rewrite_timestamps: bool = Field(
        True,
        description="Clamp every file time in a release build's layers to SOURCE_DATE_EPOCH "
        "(BuildKit's rewrite-timestamp; the image goes through an OCI layout and docker load), "
        "so layers built from the same inputs are identical",
    )
    output_dir: str = Field("generated", description="Where rendered Dockerfiles go")
    hardening: Hardening = Hardening()
    llvm: dict[str, Annotated[int, Field(ge=11, le=99)] | None] = Field(
        {}, description="Per distro: the LLVM major its archive has as clang-N, llvm-N, lld-N, "
        "bolt-N (toolchain: clang profiles), or null for none; overrides the built-in table "
        "(bookworm, trixie, noble, resolute: 19)",
    )
    native_platform: Platform = Field(
        "linux/amd64",
        description="The platform of the machines that build (CI runners). CPython for other "
        "platforms is cross-compiled from it (method source); their apt steps run under "
        "emulation (QEMU binfmt)",
    )


def check_cache_template(template: str) -> str | None:
    """A problem with a build.cache ref template (or a --cache-from/--cache-to REF), or None."""
    names: set[str] = set()
    try:
        for _, name, spec, conv in string.Formatter().parse(template):
            if name is None:
                continue
            if spec or conv:
                return f"{{{name}}} takes no format spec or conversion"
            names.add(name)
    except ValueError as exc:
        return f"bad template: {exc}"
    unknown = names - set(CACHE_FIELDS)
    if unknown:
        return f"unknown placeholder {{{sorted(unknown)[0]}}} (known: " + ", ".join(
            "{" + f + "}" for f in CACHE_FIELDS) + ")"
    return None


def llvm_for(build: Build, distro: str) -> int | None:
    """The LLVM major clang profiles compile with on ``distro`` (build.llvm, else the table)."""
    return build.llvm[distro] if distro in build.llvm else DISTRO_LLVM.get(distro)


def uses_clang(profiles: dict[str, Profile]) -> bool:
    """Whether a profile compiles with clang: the Dockerfiles then carry the clang stages."""
    return any(p.toolchain == "clang" for p in profiles.values())
