"""The CPython builds of a distro's Dockerfile: one per (minor, method), shared by every
image that needs it, with the configure options, compiler flags and build args of a profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator import naming
from orchestrator.config import matrix
from orchestrator.config.build import TAIL_CALL_MINOR, Profile, uses_clang
from orchestrator.config.matrix import Cell
from orchestrator.config.model import ImagesConfig
from orchestrator.lock.lockfile import Lock
from orchestrator.planning.plan import (
    ARCHES,
    Arch,
    cross_arches_for,
    frozen_modules_for,
    pie_for,
    prefix_for,
    profile_of,
)

# build.pie: false, exactly as CPython's own configure does for its BOLT builds: the core is
# compiled -fno-pie (CFLAGS_NODIST: extension modules still get -fPIC after it, and it is not
# exported to extension builds) and every executable (python, _freeze_module, _testembed) is
# linked by LINKCC with -fno-pie -no-pie (configure's default LINKCC plus those), never the
# -shared links of extension modules, which -no-pie in LDFLAGS would turn into executable links.
# Make expands $(PURIFY) $(CC): the templates escape the $ (filter dq).
NO_PIE_LINK = ("LINKCC", "$(PURIFY) $(CC) -fno-pie -no-pie")
NO_PIE_ENV = (("CFLAGS_NODIST", "-fno-pie"), NO_PIE_LINK)
# 3.11 and older still build some extension modules with setup.py, whose compiler_so puts
# CCSHARED (-fPIC) *before* CFLAGS + PY_CFLAGS_NODIST: -fno-pie there wins, the objects are not
# PIC and their -shared links fail ("Failed to build these modules"; make install's setup.py
# pass, run without CC, then builds them again). There only the executables are linked -no-pie.
SETUP_PY_LAST_MINOR = (3, 11)


def no_pie_env(base_minor: str) -> tuple[tuple[str, str], ...]:
    """What build.pie: false passes to configure for CPython ``base_minor`` ("3.13")."""
    return (NO_PIE_LINK,) if matrix.minor_key(base_minor)[:2] <= SETUP_PY_LAST_MINOR else NO_PIE_ENV


DEFAULT_CONFIGURE = ("--enable-loadable-sqlite-extensions", "--with-ensurepip=install")
# The free-threaded build (pythons[].freethreaded): python-build passes it through
# PYTHON_CONFIGURE_OPTS, as pyenv's own 3.13.Xt definitions do (PYTHON_BUILD_FREE_THREADING).
FREETHREADED_CONFIGURE = "--disable-gil"
# python-build's hook, run in the unpacked source before configure (BuildUnit.definition).
PYTHON_BUILD_EPOCH_HOOK = ('before_install_package() { SOURCE_DATE_EPOCH="$(stat -c %Y '
                           'Include/patchlevel.h)" && export SOURCE_DATE_EPOCH; }')
FRAME_POINTER_FLAGS = "-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer"


def profile_cflags(profile: Profile) -> str:
    """The profile's own compiler flags (build arg PYTHON_EXTRA_CFLAGS)."""
    return " ".join(x for x in (profile.cflags, FRAME_POINTER_FLAGS if profile.frame_pointers
                                else "") if x)


def profile_args(config: ImagesConfig, profile_name: str | None) -> dict[str, str]:
    """The build args that carry a profile into the compile stages: a profile's flags reach
    the Dockerfile that builds it (the rendered ARG defaults are the default profile's)."""
    prof = profile_of(config, profile_name)
    args = {"PYTHON_PGO": "1" if prof.pgo else "", "PYTHON_LTO": "1" if prof.lto else "",
            "PYTHON_EXTRA_CFLAGS": profile_cflags(prof),
            "PYTHON_PROFILE_CONFIGURE": " ".join(prof.configure_opts)}
    if uses_clang(config.profiles):  # only then do the Dockerfiles declare these
        args |= clang_args(prof)
    return args


def clang_args(prof: Profile) -> dict[str, str]:
    """The build args of profiles.*.toolchain and its options: which build-deps stage the
    native source compiles start FROM (a global ARG), and what scripts/clang-toolchain.sh turns
    on. The compile stages of minors an option does not apply to do not declare its ARG."""
    clang = prof.toolchain == "clang"
    stages = naming.DISTRO_STAGES
    return {"PYTHON_BUILD_DEPS": stages.build_deps_clang if clang else stages.build_deps,
            "PYTHON_CLANG": "1" if clang else "", "PYTHON_BOLT": "1" if clang and prof.bolt else "",
            "PYTHON_TAIL_CALL": "1" if clang and prof.tail_call else "",
            "PYTHON_JIT": prof.jit if clang and prof.jit != "off" else ""}


@dataclass(frozen=True)
class Alias:
    """The feed stage ``BuildStages.feed(build, target)`` (naming) is FROM ``source``."""

    build: str
    target: str
    source: str


@dataclass(frozen=True)
class BuildUnit:
    """One CPython build (and its prep) on one distro, shared by every image that needs it."""

    distro: str
    minor: str  # the matrix minor; for 3.13t also CPython's LDVERSION (python3.13t, lib/python3.13t)
    method: str
    version: str
    prefix: str
    url: str
    sha256: str
    filename: str
    signature_url: str | None
    key_url: str | None
    key_sha256: str | None
    key_fingerprint: str | None
    configure: tuple[str, ...]  # ours; the profile's (build arg) and the Python's own follow
    entry_configure: tuple[str, ...]  # pythons[].configure_opts: last, so they win
    ldflags: str  # after the hardening LDFLAGS (shared libpython: its rpath)
    cflags: str  # the default profile's (PYTHON_EXTRA_CFLAGS default); others come as build args
    freeze_modules: tuple[str, ...] = ()  # frozen in addition to CPython's own (source only)
    # Variables configure reads from the environment (build.pie: false sets them).
    build_env: tuple[tuple[str, str], ...] = ()
    cross_arches: tuple[Arch, ...] = ()  # cross-compiled from the native platform (source only)
    native: str = "amd64"  # build.native_platform's architecture
    freethreaded: bool = False  # --disable-gil: the t ABI (python3.13t, lib/python3.13t)

    @property
    def clang_314(self) -> bool:
        """Whether the 3.14+ clang options (tail call; JIT unless free-threaded) apply."""
        return self.method == "source" and matrix.minor_key(self.base_minor)[:2] >= TAIL_CALL_MINOR

    @property
    def base_minor(self) -> str:
        """The CPython minor (3.13 for 3.13t)."""
        return matrix.base_minor(self.minor)

    @property
    def aliases(self) -> tuple[Alias, ...]:
        """Which compile feeds each (build arch, target arch): native for the same arch (an
        arm64 runner compiles arm64 natively), the cross stage from the native platform."""
        same = tuple(Alias(a.name, a.name, self.stages.compile) for a in ARCHES.values())
        cross = tuple(Alias(self.native, a.name, self.stages.cross(a.name))
                      for a in self.cross_arches)
        return same + cross

    @property
    def stages(self) -> naming.BuildStages:
        return naming.BuildStages(self.minor, self.method)

    @property
    def suffix(self) -> str:
        return self.stages.suffix

    @property
    def definition(self) -> tuple[str, ...]:
        """A python-build definition pinned to the locked tarball, one line per item.

        python-build sources the definition, then calls ``before_install_package`` in the
        unpacked tree before configure: the hook exports SOURCE_DATE_EPOCH as the source
        method's compile does (the tarball's date of Include/patchlevel.h), so the build date in
        ``sys.version`` and the bytecode do not depend on the day of the build."""
        nodot = self.base_minor.replace(".", "")
        return (PYTHON_BUILD_EPOCH_HOOK,
                f'install_package "Python-{self.version}" "{self.url}#{self.sha256}" '
                f"standard verify_py{nodot} ensurepip")


def build_units(config: ImagesConfig, lock: Lock, cells: Iterable[Cell]) -> list[BuildUnit]:
    profile = profile_of(config, None)
    seen: dict[tuple[str, str, str], BuildUnit] = {}
    cells = list(cells)
    for c in cells:
        if not c.compiles or c.build_key in seen:
            continue
        same_build = [x for x in cells if x.build_key == c.build_key]
        p = lock.python(c.base_minor)
        entry = config.python(c.base_minor)
        configure = list(DEFAULT_CONFIGURE)
        if c.freethreaded:
            configure.append(FREETHREADED_CONFIGURE)
        ldflags = ""
        if config.build.shared_libpython:
            configure += ["--enable-shared"]
            ldflags = f"-Wl,-rpath={prefix_for(config, c.minor)}/lib"
        elif c.method == "python-build":
            # python-build adds --enable-shared unless the options say --disable-shared
            # (plugins/python-build/bin/python-build): say it, so the cell is static as
            # shared_libpython: false promises (no libpython3.X.so, no loader relocations)
            configure += ["--disable-shared"]
        key = p.signing_key
        seen[c.build_key] = BuildUnit(
            distro=c.distro, minor=c.minor, method=c.method, version=p.version,
            prefix=prefix_for(config, c.minor), url=p.url, sha256=p.sha256, filename=p.filename,
            signature_url=p.signature_url if key else None,
            key_url=key.url if key else None, key_sha256=key.sha256 if key else None,
            key_fingerprint=key.fingerprint if key else None,
            configure=tuple(configure), entry_configure=entry.configure_opts,
            ldflags=ldflags, cflags=profile_cflags(profile),
            freeze_modules=frozen_modules_for(config, c),
            build_env=no_pie_env(c.base_minor) if pie_for(config, c) is False else (),
            cross_arches=cross_arches_for(config, same_build),
            native=ARCHES[config.build.native_platform].name,
            freethreaded=c.freethreaded,
        )
    return list(seen.values())
