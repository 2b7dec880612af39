"""Every name the orchestrator gives to what it builds, spelled here and nowhere else.

Generated file paths, Dockerfile stage names, bake targets, build ids, what a failed stage
takes down, image label keys, and candidate and repository references. The stage templates
get their stage names from here (render passes them in), the BuildKit log parser and the
build phase read stage names back with ``parse_stage``. Pure: strings in, strings out; it
imports nothing of the package.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Literal

# ---- generated files, relative to build.output_dir ------------------------------------------

BAKE_FILE = "docker-bake.json"
DOCKERFILE = "Dockerfile"
CERTS_DIR = "certs"  # in a build context: images.yaml's ca_certificates
SCRIPTS_DIR = "scripts"  # in a build context: stages/scripts; a RUN step bind-mounts the files
# stages/scripts files only the clang compiles run: rendered only beside a Dockerfile that
# has them (profiles.*.toolchain clang)
CLANG_SCRIPTS = frozenset({"clang-toolchain.sh", "pgo-check-clang.sh"})
# it runs one by one (render.templates.scripts_mount), so a change to one script rebuilds only
# the steps that run it.
# stages/minimal, only in the contexts of distros with minimal images.
MINIMAL_DIR = "minimal"


def context_dir(distro: str) -> str:
    """A distro's build context: its Dockerfile, ``certs/`` and ``scripts/``."""
    return distro


def dockerfile_path(distro: str) -> PurePosixPath:
    """bookworm -> bookworm/Dockerfile."""
    return PurePosixPath(context_dir(distro), DOCKERFILE)


def bake_target(cell_id: str) -> str:
    """Bake target names allow no dots: 3.13-source-bookworm-runtime -> 3_13-source-bookworm-runtime."""
    return cell_id.replace(".", "_")


# ---- Dockerfile stages ----------------------------------------------------------------------

StageKind = Literal[
    # shared by every image of a distro's Dockerfile
    "base", "build-base", "security-updates", "runtime-base", "build-deps", "build-deps-cross",
    "build-deps-clang",
    # one CPython build (minor x method): its verified tarball, compiles, prep and trees;
    # deadsnakes' PPA key
    "deadsnakes-key", "tarball", "python", "python-cross", "python-feed", "prep", "tree", "devtree",
    # the images; minimal-root assembles what a minimal image holds beside the tree
    "runtime", "dev", "minimal-root", "minimal",
]
STAGE_KINDS: tuple[StageKind, ...] = typing.get_args(StageKind)
# The kinds whose stage name is the kind itself: one stage of each per Dockerfile (the
# deadsnakes key too, though a failure of it takes down only the images that use the PPA).
DISTRO_STAGE_KINDS: frozenset[StageKind] = frozenset(
    ("base", "build-base", "security-updates", "runtime-base", "build-deps", "build-deps-clang",
     "deadsnakes-key"))
# "${BUILDARCH}": a FROM that picks its stage by platform names every stage it can be.
_ARCH = r"[a-z0-9]+|\$\{[A-Z]+\}"
_SUFFIX = r"(?P<minor>\d+\.\d+t?)-(?P<method>[a-z][a-z0-9]*(?:-[a-z0-9]+)*?)"
_PATTERNS: tuple[tuple[StageKind, re.Pattern[str]], ...] = (
    ("build-deps-cross", re.compile(rf"build-deps-cross-(?P<arch>{_ARCH})")),
    ("python-cross", re.compile(rf"python-{_SUFFIX}-cross-(?P<arch>{_ARCH})")),
    ("python-feed", re.compile(rf"python-{_SUFFIX}-(?P<build_arch>{_ARCH})-to-(?P<arch>{_ARCH})")),
    *((kind, re.compile(rf"{kind}-{_SUFFIX}"))
      for kind in ("tarball", "python", "prep", "tree", "devtree", "runtime", "dev", "minimal-root",
                   "minimal")),
)


@dataclass(frozen=True)
class Stage:
    """A stage of a distro's Dockerfile, by kind and what it is for."""

    kind: StageKind
    minor: str = ""  # every kind of one build or image
    method: str = ""
    arch: str = ""  # the target architecture: build-deps-cross, python-cross, python-feed
    build_arch: str = ""  # the architecture that builds: python-feed

    @property
    def name(self) -> str:
        suffix = f"{self.minor}-{self.method}"
        if self.kind in DISTRO_STAGE_KINDS:
            return self.kind
        if self.kind == "build-deps-cross":
            return f"build-deps-cross-{self.arch}"
        if self.kind == "python-cross":
            return f"python-{suffix}-cross-{self.arch}"
        if self.kind == "python-feed":
            return f"python-{suffix}-{self.build_arch}-to-{self.arch}"
        return f"{self.kind}-{suffix}"


def parse_stage(name: str) -> Stage | None:
    """The stage ``name`` names (None: not a name this module gives)."""
    for kind in DISTRO_STAGE_KINDS:
        if name == kind:
            return Stage(kind)
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return Stage(kind, **{k: v for k, v in m.groupdict().items() if v})
    return None


def build_deps_cross(arch: str) -> str:
    """The cross toolchain and the target's -dev packages, on the build platform."""
    return Stage("build-deps-cross", arch=arch).name


@dataclass(frozen=True)
class DistroStages:
    """The stages every image of a distro's Dockerfile shares (the templates' ``stage``)."""

    base: str = "base"  # the distro image, pinned by digest
    build_base: str = "build-base"  # the same on $BUILDPLATFORM
    security_updates: str = "security-updates"  # apt upgrade; the nightly re-runs only this
    runtime_base: str = "runtime-base"
    build_deps: str = "build-deps"  # compilers and -dev packages (FROM build-base)
    # + the distro's clang-N, llvm-N, lld-N (bolt-N): FROM build-deps, for clang profiles
    build_deps_clang: str = "build-deps-clang"
    deadsnakes_key: str = "deadsnakes-key"

    @staticmethod
    def build_deps_cross(arch: str) -> str:
        return build_deps_cross(arch)


DISTRO_STAGES = DistroStages()


@dataclass(frozen=True)
class BuildStages:
    """The stages of one CPython build (minor x method) and of the images made from it."""

    minor: str
    method: str

    def _name(self, kind: StageKind, arch: str = "", build_arch: str = "") -> str:
        return Stage(kind, self.minor, self.method, arch, build_arch).name

    @property
    def suffix(self) -> str:
        return f"{self.minor}-{self.method}"

    @property
    def tarball(self) -> str:
        """The release tarball alone, its checksum and signature verified (method source):
        the compiles copy it from here, so a change to how it is verified rebuilds no compile
        unless the verified bytes change."""
        return self._name("tarball")

    @property
    def compile(self) -> str:
        """The native compile on the build platform (also the cross builds' build Python)."""
        return self._name("python")

    def cross(self, arch: str) -> str:
        """The cross compile for ``arch``."""
        return self._name("python-cross", arch)

    def feed(self, build_arch: str, target_arch: str) -> str:
        """Which compile feeds prep on ``build_arch`` for ``target_arch``."""
        return self._name("python-feed", target_arch, build_arch)

    @property
    def prep(self) -> str:
        return self._name("prep")

    @property
    def tree(self) -> str:
        """FROM scratch: the prepared tree, the one CPython layer of every image."""
        return self._name("tree")

    @property
    def devtree(self) -> str:
        return self._name("devtree")

    @property
    def runtime(self) -> str:
        return self._name("runtime")

    @property
    def dev(self) -> str:
        return self._name("dev")

    @property
    def minimal_root(self) -> str:
        """On runtime-base: the files a minimal image holds beside the tree, under one dir."""
        return self._name("minimal-root")

    @property
    def minimal(self) -> str:
        """FROM scratch: those files, then the tree stage (the runtime image's very layer)."""
        return self._name("minimal")

    def image(self, variant: str) -> str:
        """The stage that produces the ``variant`` image (the cell's build target)."""
        if variant not in ("runtime", "dev", "minimal"):
            raise ValueError(f"no image stage for variant {variant!r}")
        return self._name(typing.cast(StageKind, variant))


def is_compile_stage(name: str) -> bool:
    """A stage that compiles CPython (native or cross)."""
    stage = parse_stage(name)
    return stage is not None and stage.kind in ("python", "python-cross")


def relabel_stage(arch: str) -> str:
    """A stage of the label pass's Dockerfile: one platform's candidate with its labels."""
    return f"labelled-{arch}"


def platform_arch(platform: str) -> str:
    """linux/arm64 -> arm64 (the value of TARGETARCH)."""
    return platform.rsplit("/", 1)[1]


# ---- build ids and failure scopes -----------------------------------------------------------

def stage_id(distro: str, stage: str) -> str:
    """A stage across distros: bookworm/python-3.13-source. A build id (plan builds, report
    compiles) is the stage id of a compile stage."""
    return f"{distro}/{stage}"


def native_build_id(build_id: str) -> str | None:
    """The build id of the native compile whose interpreter a cross compile builds with:
    bookworm/python-3.13-source-cross-arm64 -> bookworm/python-3.13-source (None: not a
    cross compile)."""
    distro, _, stage = build_id.rpartition("/")
    parsed = parse_stage(stage)
    if parsed is None or parsed.kind != "python-cross":
        return None
    return stage_id(distro, BuildStages(parsed.minor, parsed.method).compile)


FailureScope = Literal["distro", "build", "runtime"]
_SCOPES: dict[StageKind, FailureScope | None] = {
    "base": "distro", "build-base": "distro", "security-updates": "distro",
    "runtime-base": "distro", "build-deps": "distro", "build-deps-cross": "distro",
    "deadsnakes-key": "build", "tarball": "build", "python": "build", "python-cross": "build",
    "python-feed": "build", "prep": "build", "tree": "build", "devtree": "build",
    "runtime": "runtime", "dev": None, "minimal-root": None, "minimal": None,
}


def failure_scope(stage: str | None) -> FailureScope | None:
    """What a failed stage takes down with it: every image of the distro (a shared stage, or
    no stage known), every image of one CPython build (its compiles, prep and trees; the
    deadsnakes key), one runtime stage and its dev image; None: only the image itself (a
    minimal image's own stages take down only it)."""
    if stage is None:
        return "distro"
    parsed = parse_stage(stage)
    return _SCOPES[parsed.kind] if parsed else None


def failure_keys(distro: str, minor: str, method: str) -> dict[FailureScope, str]:
    """The key of each scope an image of (distro, minor, method) can be taken down by."""
    stages = BuildStages(minor, method)
    return {"distro": distro, "build": stage_id(distro, stages.compile),
            "runtime": stage_id(distro, stages.runtime)}


# ---- image labels ---------------------------------------------------------------------------

def label_namespace(org: str) -> str:
    """The namespace of the orchestrator's own labels: org.<org>.base-image."""
    return f"org.{org}.base-image"


@dataclass(frozen=True)
class LabelKeys:
    """The orchestrator's own label keys: field ``python_tree`` is ``<namespace>.python-tree``."""

    namespace: str
    cell: str  # the cell id (bake file)
    python_version: str  # the CPython version the image carries
    build_method: str  # source | python-build | deadsnakes
    variant: str  # dev images
    fingerprint: str  # the content fingerprint that makes unchanged images push nothing
    packages: str  # every dpkg package=version
    python_tree: str  # sha256 of the installed CPython tree
    # per platform: pgo+lto | lto | pgo | none (gcc); clang+[pgo+][thinlto+][bolt+][tail-call+]
    # [jit-yes-off] (profiles.*.toolchain clang; the native compile only)
    optimizations: str
    hardening: str  # what the compiled tree's ELF files have
    inputs: str  # everything the image is built from, known before a build
    apt_sources: str  # what the image's apt reads


def label_keys(org: str) -> LabelKeys:
    ns = label_namespace(org)
    keys = {f.name: f"{ns}.{f.name.replace('_', '-')}" for f in fields(LabelKeys)
            if f.name != "namespace"}
    return LabelKeys(namespace=ns, **keys)


@dataclass(frozen=True)
class OciKeys:
    """The OCI annotation keys the orchestrator sets itself (images.yaml may add others), and
    the one it reads from images.yaml's labels (``source``: the provenance's repository)."""

    version: str = "org.opencontainers.image.version"
    created: str = "org.opencontainers.image.created"
    revision: str = "org.opencontainers.image.revision"
    ref_name: str = "org.opencontainers.image.ref.name"
    base_name: str = "org.opencontainers.image.base.name"
    base_digest: str = "org.opencontainers.image.base.digest"
    source: str = "org.opencontainers.image.source"
    description: str = "org.opencontainers.image.description"  # Registry.untag's placeholders


OCI = OciKeys()


# ---- image references -----------------------------------------------------------------------

CANDIDATE_TAG = "latest"  # a built, labelled candidate: what `test` and `push` read
UNLABELLED_TAG = "unlabelled"  # the build's own output, before the label pass


def candidate_ref(prefix: str, cell_id: str, tag: str = CANDIDATE_TAG) -> str:
    """A local, not yet published image: <ORCH_CANDIDATE_PREFIX>/<cell id>:<tag>."""
    return f"{prefix}/{cell_id}:{tag}"


# The internal tag a candidate is pushed under until its gates passed (push.py): no public tag
# starts with it (config/checks/matrix.py refuses a tag template that would give one), and the
# push removes it again whatever became of the image, so what no gate let through is in the
# registry by digest only.
STAGING_PREFIX = "_staging-"


def staging_tag(cell_id: str) -> str:
    """``_staging-<cell id>``: one per cell (the next push of the cell overwrites a leftover)."""
    return (STAGING_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", cell_id))[:128]


def is_staging_tag(tag: str) -> bool:
    return tag.startswith(STAGING_PREFIX)


def repository_ref(registry: str, repository: str) -> str:
    """registry.example.org + org/python -> registry.example.org/org/python."""
    return f"{registry}/{repository}"


def tagged(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def digested(repository: str, digest: str) -> str:
    """registry.example.org/org/python + sha256:... -> registry.example.org/org/python@sha256:..."""
    return f"{repository}@{digest}"


# ---- inside an image --------------------------------------------------------------------------

def interpreter(prefix: str) -> str:
    """The python3 every image has under its CPython prefix (runtime, dev and minimal alike; a
    deadsnakes image links it to the PPA's /usr/bin/python3.X)."""
    return f"{prefix}/bin/python3"


# ---- work files (under ORCH_WORK_DIR) ---------------------------------------------------------

def reproducible_layout(work: Path, cell_id: str, n: int) -> Path:
    """The OCI layout tar of check-reproducible's ``n``-th cold build of a cell."""
    return work / "reproducible" / cell_id / f"build-{n}.oci.tar"


def reproducible_log(work: Path, cell_id: str, n: int) -> Path:
    return work / "logs" / f"{cell_id}.reproducible-{n}.log"


def perf_dir(work: Path) -> Path:
    """The performance record's files: the pyperf copy the images bind-mount, each record."""
    return work / "perf"
