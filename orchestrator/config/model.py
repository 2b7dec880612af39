"""The models of images.yaml (frozen pydantic models and the Literal types the rest of the
package uses) and ``Loaded``, a validated file; ``config`` loads and validates a file into them.
A leaf: it imports no loader, check or planner."""

from __future__ import annotations

import datetime as dt
import re
import string
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.config.yamlsafe import Path_, line

Method = Literal["source", "python-build", "deadsnakes"]
VariantName = Literal["runtime", "dev", "minimal"]
Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[str, ...] = typing.get_args(Platform)
METHODS: tuple[str, ...] = typing.get_args(Method)
VARIANTS: tuple[str, ...] = typing.get_args(VariantName)
TAG_FIELDS = ("minor", "version", "variant", "distro", "method", "date")
# What a minimal image carries beside the libraries its tree links: these data packages of
# runtime-base, whole (validation wants them in packages.runtime; planning adds the optional
# ones runtime-base has).
MINIMAL_DATA_PACKAGES = ("ca-certificates", "tzdata")

VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"
_MODULE_RE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Publish(_Model):
    registry: str = Field(description="Registry host[:port] images are pushed to")
    repository: str = Field(description="Repository in that registry, e.g. org/python")
    org: str = Field(
        "org", pattern=_NAME_RE,
        description="Install prefix /opt/<org>/python/X.Y and label namespace org.<org>.base-image",
    )


class PyenvSource(_Model):
    version: str = Field(description="pyenv release whose python-build is used")
    url: str = Field(
        "https://github.com/pyenv/pyenv/archive/refs/tags/v{version}.tar.gz",
        description="Release tarball URL template ({version})",
    )


class DeadsnakesSource(_Model):
    ppa: str = "deadsnakes/ppa"
    key_fingerprint: str = Field(
        "F23C5A6CF475977595C89F51BA6932366A755776", pattern=r"^[0-9A-F]{40}$"
    )
    key_url: str = "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x{fingerprint}"
    archive: str = "https://ppa.launchpadcontent.net/{ppa}/ubuntu"


class Sources(_Model):
    python: str = Field(
        "https://www.python.org/ftp/python/",
        description="Base URL laid out like python.org's /ftp/python/ (X.Y.Z/Python-X.Y.Z.tar.xz)",
    )
    python_keys: str = Field(
        "https://keys.openpgp.org/vks/v1/by-fingerprint/{fingerprint}",
        description="URL template of a release manager's OpenPGP key ({fingerprint})",
    )
    pyenv: PyenvSource = PyenvSource(version="2.6.30")
    base_registry: str = Field(
        "docker.io", description="Registry (or pull-through mirror) base images come from"
    )
    pypi: str = Field("https://pypi.org/simple", description="Index for the dev tooling")
    deadsnakes: DeadsnakesSource = DeadsnakesSource()
    apt_keyrings: tuple[str, ...] = Field(
        ("/usr/share/keyrings", "/usr/local/share/keyrings"),
        description="Directories, on the machine that runs `outdated` and `nightly`, holding the "
        "archive keyrings the images' apt sources name (looked up by the Signed-By file name; "
        "debian-archive-keyring.gpg / ubuntu-archive-keyring.gpg when a source names none)",
    )


class Packages(_Model):
    runtime: tuple[str, ...] = Field(description="Shared libraries and files every image needs")
    runtime_for_python: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Extra runtime packages only images of one Python minor need, e.g. '
        '{"3.12": [libnsl2]} for the nis module (removed in 3.13)',
    )
    build: tuple[str, ...] = Field(description="Compilers and -dev packages for building CPython")
    dev: tuple[str, ...] = Field(description="What the dev variant adds for building wheels")


class Distro(_Model):
    family: Literal["debian", "ubuntu"]
    release: str = Field(description='Release number, e.g. "12" or "24.04"')
    image: str = Field(description="Base image reference without registry, e.g. debian:bookworm-slim")
    eol: dt.date | None = Field(None, description="End of support; default: the built-in table")
    methods: tuple[Method, ...] = Field(min_length=1)
    system_python: str | None = Field(
        None, description="The minor the distro itself ships (the PPA does not publish it)"
    )
    packages: Packages
    platforms: tuple[Platform, ...] | None = Field(
        None, min_length=1,
        description="Platforms of this distro's images; default: the top-level platforms",
    )


class PythonEntry(_Model):
    version: str = Field(description='"3.13" (newest patch, resolved by lock) or "3.13.5" (pinned)')
    configure_opts: tuple[str, ...] = ()
    freethreaded: bool = Field(
        False,
        description="Also build the free-threaded interpreter (configure --disable-gil, python3.Xt; "
        "3.13+, methods source and python-build): cells and tags <minor>t, e.g. 3.13t-runtime, "
        "each a compile of its own, installed to /opt/<org>/python/3.13t",
    )


class Variant(_Model):
    """runtime and dev (FROM runtime); minimal: FROM scratch, the tree and the files of the
    libraries it links, no shell and no package manager (not for deadsnakes cells)."""

    size_budget_mb: int = Field(gt=0, description="Uncompressed image size budget (MB)")


class CellRule(_Model):
    distro: str | None = None
    python: str | None = None
    method: Method | None = None
    variant: VariantName | None = None


class TagTemplate(_Model):
    template: str
    only_default: bool = Field(
        False, description="Only for the default distro and method (e.g. 3.13-runtime)"
    )


class MinorDefault(_Model):
    """Where a minor's short tags (3.12-runtime) come from when not from the default distro."""

    distro: str
    method: Method | None = Field(
        None, description="Default: tags.default_method if the distro has it for this minor, "
        "else the first of the distro's methods that it has")


class Tags(_Model):
    default_distro: str
    default_method: Method = "source"
    defaults: dict[str, MinorDefault] = Field(
        default_factory=dict,
        description='Per minor ("3.12", "3.14t"): the distro (and method) behind its short tags, '
        "for a minor the default distro does not carry (e.g. 3.12 only as noble's deadsnakes build)")
    method_suffix: dict[Method, str] = {
        "source": "",
        "python-build": "pybuild",
        "deadsnakes": "deadsnakes",
    }
    moving: tuple[TagTemplate, ...]
    # The date inside the version (3.13.15.20261121-runtime-bookworm): Renovate and Dependabot
    # read the text after the first "-" as a compatibility suffix (docs/tags-and-renovate.md).
    immutable: str = "{version}.{date}-{variant}-{distro}{method}"
    date_format: str = "%Y%m%d"


class Profile(_Model):
    pgo: bool
    lto: bool
    cflags: str = ""
    configure_opts: tuple[str, ...] = ()
    frame_pointers: bool = Field(
        False, description="-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer, as the official "
        "images build (perf and eBPF profilers can walk the stack); costs a few percent (make bench)",
    )


HardeningFeature = Literal["stack-protector", "fortify", "relro", "bind-now", "stack-clash",
                           "cf-protection"]
# images.yaml's names -> dpkg-buildflags' hardening features (DEB_BUILD_MAINT_OPTIONS)
DPKG_HARDENING = {"stack-protector": "stackprotector", "fortify": "fortify", "relro": "relro",
                  "bind-now": "bindnow", "stack-clash": "stackclash",
                  "cf-protection": "cfprotection"}


class Hardening(_Model):
    """Every compile takes the distro's hardening flags from dpkg-buildflags
    (DEB_BUILD_MAINT_OPTIONS=hardening=+all: stack protector strong, _FORTIFY_SOURCE,
    RELRO + BIND_NOW, stack-clash protection, -fcf-protection / branch protection where the
    distro's dpkg knows it), so a distro's policy flows through. PIE is build.pie's choice."""

    disable: dict[HardeningFeature, Annotated[str, Field(min_length=10)]] = Field(
        default_factory=dict,
        description="Features to turn off, each with the reason (at least 10 characters)",
    )


CACHE_FIELDS = ("registry", "repository", "profile", "distro", "cell")


class Cache(_Model):
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


class Build(_Model):
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
    native_platform: Platform = Field(
        "linux/amd64",
        description="The platform of the machines that build (CI runners). CPython for other "
        "platforms is cross-compiled from it (method source); their apt steps run under "
        "emulation (QEMU binfmt)",
    )


class Signing(_Model):
    """cosign signatures and attestations (SBOM, provenance) of every pushed image, and the
    verify gate of promote. Checks: checks_signing."""

    key: str = Field(
        description="The cosign signing key: a file (relative to images.yaml; written from a CI "
        "secret at push time), env://VAR (cosign reads the key from that variable), or a KMS "
        "URI passed to cosign as is (awskms://, gcpkms://, azurekms://, hashivault://)",
    )
    public_key: str | None = Field(
        None, description="What verify checks against: a file (relative to images.yaml, "
        "committed), env://VAR, https:// URL or a KMS URI; default: the key file with .pub "
        "instead of .key, or the KMS key itself",
    )
    password_env: str = Field(
        "COSIGN_PASSWORD",
        description="Environment variable holding the key's password (file and env:// keys)",
    )
    tlog: bool = Field(
        False, description="Upload signatures to a Rekor transparency log and require them on "
        "verify; false for a private registry (no public log may see its image names)",
    )
    required: bool = Field(
        True, description="promote refuses to move a tag to a digest whose signature, SBOM "
        "attestation or provenance does not verify",
    )


# --------------------------------------------------------------------------- scan:

Severity = Literal["negligible", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = typing.get_args(Severity)


class ScanDb(_Model):
    """The grype vulnerability DB archive (grype's `db import` format) the scan uses: its
    checksum is pinned, nothing is updated behind the scan's back."""

    url: str | None = Field(
        None, description="https:// (or http://) URL of the archive, e.g. a mirror of "
        "grype's vulnerability-db_v6.*.tar.zst; downloaded once into the cache")
    file: str | None = Field(
        None, description="The archive as a file (relative to images.yaml, or absolute)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="sha256 of the archive (refused when it differs)")


class IgnoreRule(_Model):
    """A finding the gate leaves out until the rule expires (the report still lists it)."""

    advisory: str = Field(min_length=1, description="e.g. CVE-2025-1234 or GHSA-xxxx-xxxx-xxxx")
    package: str | None = Field(None, description="Only this package (default: any)")
    cells: str | None = Field(None, description="Only cells matching this glob (default: all)")
    reason: str = Field(min_length=10, description="Why it does not apply (at least 10 characters)")
    expires: dt.date = Field(description="From this day on the rule no longer applies")


class Scan(_Model):
    """`orchestrator scan`: grype on every published image, per platform, with a pinned DB."""

    db: ScanDb
    max_age_days: int = Field(
        5, ge=1, le=365, description="A DB built longer ago than this is refused (grype's "
        "default is 5 days)")
    fail_on: Severity = Field(
        "critical", description="The gate: a fixable finding at or above this severity fails "
        "the scan (exit 1)")
    ignore: tuple[IgnoreRule, ...] = ()


class User(_Model):
    name: str = Field("app", pattern=_NAME_RE)
    uid: int = Field(10001, ge=0, description="Must not be 0: runtime images run as non-root")
    gid: int = Field(10001, ge=0)
    home: str = "/home/app"


class ImagesConfig(_Model):
    schema_version: Literal[1]
    publish: Publish
    sources: Sources = Sources()
    distros: dict[Annotated[str, Field(pattern=_NAME_RE)], Distro] = Field(min_length=1)
    pythons: tuple[PythonEntry, ...] = Field(min_length=1)
    max_pythons: int = Field(3, ge=1, description="add-python refuses to go beyond this")
    variants: dict[VariantName, Variant]
    include: tuple[CellRule, ...] = ()
    exclude: tuple[CellRule, ...] = ()
    tags: Tags
    platforms: tuple[Platform, ...] = Field(
        ("linux/amd64",), min_length=1,
        description="Platforms every image is built for; each tag is one OCI index listing them",
    )
    profiles: dict[str, Profile] = {
        "release": Profile(pgo=True, lto=True, frame_pointers=True),
        # the test package and test C modules are neither built nor installed (prep would
        # delete them): less to compile and to byte-compile three times in `make install`.
        # release keeps them: PGO's training run uses the test suite.
        "fast": Profile(pgo=False, lto=False, configure_opts=("--disable-test-modules",)),
    }
    default_profile: str = "release"
    build: Build = Build()
    runtime_user: User = User()
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    ca_certificates: tuple[str, ...] = Field(
        (), description="Extra CA certificates (PEM files, relative to images.yaml) to trust"
    )
    dev_tools: tuple[str, ...] = Field(
        ("build==1.3.0", "wheel==0.45.1", "auditwheel==6.4.2"),
        description="pip requirements the dev variant installs (pin them)",
    )
    signing: Signing | None = Field(
        None, description="Sign pushed images and attest their SBOM and provenance with cosign",
    )
    scan: Scan | None = Field(
        None, description="`orchestrator scan`: grype on every published image with a pinned "
        "vulnerability DB, and the severity that fails it",
    )

    def python(self, minor: str) -> PythonEntry:
        for p in self.pythons:
            if minor_of(p.version) == minor:
                return p
        raise KeyError(minor)


def minor_of(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


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


@dataclass(frozen=True)
class Loaded:
    """A validated images.yaml: the model plus where it came from and what to warn about."""

    config: ImagesConfig
    path: Path
    warnings: tuple[str, ...] = ()
    lines: dict[Path_, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def output_dir(self) -> Path:
        return self.root / self.config.build.output_dir

    def line(self, path: Path_) -> int | None:
        return line(self.lines, path)
