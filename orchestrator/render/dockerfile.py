"""One distro's Dockerfile: the template context (its images, builds, packages, labels and
the names naming gives its stages), rendered from stages/Dockerfile.j2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import naming
from orchestrator.config.build import DPKG_HARDENING, llvm_for, uses_clang
from orchestrator.config.matrix import Cell
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.errors import ConfigError
from orchestrator.lock.lockfile import Lock
from orchestrator.planning.plan import (
    cross_arches_for,
    image_version,
    minimal_packages,
    prefix_for,
    profile_of,
)
from orchestrator.render.templates import render_template
from orchestrator.render.units import BuildUnit, build_units, clang_args


def hardening_options(config: ImagesConfig) -> dict[str, str]:
    """``dpkg``: DEB_BUILD_MAINT_OPTIONS for dpkg-buildflags: every hardening feature but
    format (-Werror=format-security is a warning policy, not a protection), minus
    build.hardening.disable; pie is left to gcc's default and build.pie. ``disable``: the
    features scripts/hardening-flags.sh must not add back."""
    disabled = sorted(config.build.hardening.disable)
    off = ["format", *(DPKG_HARDENING[f] for f in disabled)]
    return {"dpkg": "hardening=+all," + ",".join(f"-{f}" for f in off),
            "disable": " ".join(disabled)}


def clang_context(config: ImagesConfig, distro: str,
                  builds: list[BuildUnit]) -> dict[str, Any] | None:
    """What the clang stages need (profiles.*.toolchain clang and a source compile here): the
    distro's LLVM major (validated: an int), its packages, whether one profile wants BOLT and
    the build arg defaults (the default profile's). None: the Dockerfile has no clang stage."""
    llvm = llvm_for(config.build, distro)
    if not uses_clang(config.profiles) or llvm is None or not any(
            b.method == "source" for b in builds):
        return None
    bolt = any(p.toolchain == "clang" and p.bolt for p in config.profiles.values())
    packages = [f"{p}-{int(llvm)}" for p in ("clang", "llvm", "lld", *(["bolt"] if bolt else []))]
    if any(p.toolchain == "clang" and p.jit != "off" for p in config.profiles.values()):
        # the JIT's stencils are made at build time by Tools/jit/build.py, which needs a whole
        # Python >= 3.11 (shlex, asyncio...): build-deps has only python3-minimal's stdlib
        # (measured: "ModuleNotFoundError: No module named 'shlex'" from python3.11 there)
        packages.append("python3")
    return {"llvm": int(llvm), "packages": packages, "from_stage": "${PYTHON_BUILD_DEPS}",
            "args": clang_args(profile_of(config, None))}


def cross_dev_packages(config: ImagesConfig, distro: str) -> tuple[str, ...]:
    """The build packages a cross compile needs for the target architecture: every -dev
    library of packages.build (libc6-dev comes with crossbuild-essential-<arch>; dpkg-dev is
    a build-platform tool)."""
    return tuple(p for p in config.distros[distro].packages.build
                 if p.endswith("-dev") and p not in ("libc6-dev", "dpkg-dev"))


@dataclass(frozen=True)
class ImageSpec:
    cell: Cell
    version: str
    prefix: str
    path: str

    @property
    def stages(self) -> naming.BuildStages:
        return self.cell.stages

    @property
    def suffix(self) -> str:
        return self.cell.stage_suffix

    @property
    def method(self) -> str:
        return self.cell.method

    @property
    def minor(self) -> str:
        return self.cell.minor

    @property
    def base_minor(self) -> str:
        """The CPython minor (3.13 for 3.13t): packages.runtime_for_python's key."""
        return self.cell.base_minor

    @property
    def id(self) -> str:
        return self.cell.id


def image_path(config: ImagesConfig, minor: str) -> str:
    default = "{prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return config.env.get("PATH", default).format(prefix=prefix_for(config, minor))


def common_labels(config: ImagesConfig, lock: Lock, distro: str) -> dict[str, str]:
    base = lock.base(distro)
    labels = dict(sorted(config.labels.items()))
    labels[naming.OCI.base_name] = base.image
    if base.digest:
        labels[naming.OCI.base_digest] = base.digest
    return labels


def _images(config: ImagesConfig, lock: Lock, distro: str,
            mine: list[Cell]) -> tuple[list[ImageSpec], list[ImageSpec], list[ImageSpec]]:
    """(runtime, dev, minimal stages) of the distro's images, one per (minor, method): a dev
    image builds FROM its runtime stage, so a dev cell implies the runtime stage (a minimal
    one too: unused, it is never built)."""
    images: dict[tuple[str, str], ImageSpec] = {}
    for c in mine:
        spec = ImageSpec(c, image_version(lock, c), prefix_for(config, c.minor),
                         image_path(config, c.minor))
        images.setdefault((c.stage_suffix, c.variant), spec)
    runtimes = {s: ImageSpec(Cell(img.minor, img.method, distro, "runtime"), img.version,
                             img.prefix, img.path)
                for (s, _v), img in images.items()}
    devs = [img for (s, v), img in images.items() if v == "dev"]
    minimals = [img for (s, v), img in images.items() if v == "minimal"]
    return ([runtimes[k] for k in sorted(runtimes)], sorted(devs, key=lambda i: i.suffix),
            sorted(minimals, key=lambda i: i.suffix))


def _env_common(config: ImagesConfig) -> list[tuple[str, str]]:
    """ENV of runtime-base: images.yaml's env but PATH (per image), and the CA bundle."""
    env_common = [(k, v) for k, v in sorted(config.env.items()) if k != "PATH"]
    if config.ca_certificates:
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        env_common += [("PIP_CERT", bundle), ("REQUESTS_CA_BUNDLE", bundle)]
    return env_common


def _names(config: ImagesConfig) -> dict[str, Any]:
    """What the templates name things by: stages, label keys, build context dirs (naming)."""
    return {"stage": naming.DISTRO_STAGES, "label_keys": naming.label_keys(config.publish.org),
            "oci": naming.OCI, "certs_dir": naming.CERTS_DIR, "scripts_dir": naming.SCRIPTS_DIR,
            "minimal_dir": naming.MINIMAL_DIR}


def dockerfile(loaded: Loaded, lock: Lock, distro: str, cells: list[Cell]) -> str:
    config = loaded.config
    d = config.distros[distro]
    mine = [c for c in cells if c.distro == distro]
    runtimes, devs, minimals = _images(config, lock, distro, mine)
    builds = build_units(config, lock, mine)
    if any(b.method == "python-build" for b in builds) and lock.pyenv is None:
        raise ConfigError(str(loaded.path), "sources.pyenv", "python-build cells need a locked pyenv",
                          "run `orchestrator lock`")
    deadsnakes = lock.deadsnakes if any(c.method == "deadsnakes" for c in mine) else None
    ctx: dict[str, Any] = {
        "distro": {"name": distro, "family": d.family, "release": d.release, "packages": d.packages},
        "images": sorted(mine),
        "base": lock.base(distro),
        "ca_certificates": [Path(p).name for p in config.ca_certificates],
        "builds": builds,
        "cross_arches": cross_arches_for(config, mine),
        "cross_dev_packages": cross_dev_packages(config, distro),
        "profile": profile_of(config, None),
        "profile_configure": " ".join(profile_of(config, None).configure_opts),
        # any profile with PGO (the default's or one a build picks with --profile, whose build
        # args turn PYTHON_PGO on): the native compiles carry the PGO training check
        "pgo_possible": any(p.pgo for p in config.profiles.values()),
        "hardening": hardening_options(config),
        "clang": clang_context(config, distro, builds),
        "pyenv": lock.pyenv,
        "deadsnakes": ({**vars(deadsnakes), "archive": config.sources.deadsnakes.archive.format(
            ppa=deadsnakes.ppa).rstrip("/")} if deadsnakes else None),
        "runtimes": runtimes,
        "devs": devs,
        "minimals": minimals,
        "minimal_packages": minimal_packages(config, distro),
        "user": config.runtime_user,
        "env_common": _env_common(config),
        "labels_common": sorted(common_labels(config, lock, distro).items()),
        **_names(config),
        "keep_tkinter": config.build.keep_tkinter,
        "freeze_modules": config.build.freeze_modules,
        "precompile": config.build.precompile,
        "pypi": config.sources.pypi,
        "dev_tools": config.dev_tools,
    }
    return render_template("Dockerfile.j2", ctx)
