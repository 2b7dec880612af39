"""Semantic checks of images.yaml's platforms and build settings (build.cache, the profiles'
toolchain options against the distros and CPythons they compile): one line per problem,
collected with the other semantic checks (checks_semantic)."""

from __future__ import annotations

from orchestrator.config import matrix
from orchestrator.config.build import (
    LLVM_FOR_314_OPTIONS,
    TAIL_CALL_MINOR,
    Profile,
    check_cache_template,
    llvm_for,
)
from orchestrator.config.matrix import Cell
from orchestrator.config.model import ImagesConfig
from orchestrator.config.yamlsafe import Path_, Problems


def check(config: ImagesConfig, report: Problems) -> None:
    _check_platforms(config, report)
    _check_cache(config, report)
    _check_toolchains(config, report)


def _python_build_distros(config: ImagesConfig) -> dict[str, Path_]:
    """Distros with python-build cells: by their methods or by an include rule."""
    out: dict[str, Path_] = {}
    for name, d in config.distros.items():
        if "python-build" in d.methods:
            out[name] = ("distros", name, "methods")
    for i, rule in enumerate(config.include):
        if rule.method == "python-build" and rule.distro is not None:
            out.setdefault(rule.distro, ("include", i))
    return out


def _check_platforms(config: ImagesConfig, report: Problems) -> None:
    native = config.build.native_platform
    lists: list[tuple[Path_, tuple[str, ...]]] = [(("platforms",), config.platforms)]
    lists += [(("distros", n, "platforms"), d.platforms) for n, d in config.distros.items()
              if d.platforms is not None]
    for path, plats in lists:
        if len(set(plats)) != len(plats):
            report(path, "a platform is listed twice", "list each platform once")
    for name, path in _python_build_distros(config).items():
        if name not in config.distros:
            continue  # an unknown distro is reported by the rule checks
        plats = config.distros[name].platforms or config.platforms
        others = [p for p in plats if p != native]
        if native not in plats:
            report(path, f"python-build cannot cross-compile and {name} is not built for "
                   f"{native} (build.native_platform)",
                   f"add {native} to {name}'s platforms or use method source there")
        elif others:
            report.warn(path, f"python-build cannot cross-compile: its images on {name} are built for "
                        f"{native} only (use method source for {', '.join(others)})")


def _check_cache(config: ImagesConfig, report: Problems) -> None:
    cache = config.build.cache
    if cache is None:
        return
    example = 'e.g. "{registry}/{repository}/cache:{profile}-{cell}"'
    refs: list[tuple[Path_, str]] = [(("build", "cache", "ref"), cache.ref)]
    refs += [(("build", "cache", "read_also", i), r) for i, r in enumerate(cache.read_also)]
    problems = 0
    for path, text in refs:
        problem = check_cache_template(text)
        if problem:
            problems += 1
            report(path, problem, example)
    if not problems and "{cell}" not in cache.ref:
        report(("build", "cache", "ref"), "the cache ref must contain {cell}",
               "an export replaces the whole ref: give every cell its own")


# profiles.*: the options that need clang, each with what it is in configure's words
_CLANG_ONLY = (("bolt", "BOLT (--enable-bolt)"), ("tail_call", "the tail-calling interpreter "
               "(--with-tail-call-interp)"), ("jit", "the JIT (--enable-experimental-jit)"))


def _on(prof: Profile, key: str) -> bool:
    return prof.jit != "off" if key == "jit" else bool(getattr(prof, key))


def _source_cells(config: ImagesConfig) -> list[Cell]:
    """The cells clang compiles (method source; python-build runs pyenv's recipe with gcc)."""
    try:
        return [c for c in matrix.expand(config) if c.method == "source"]
    except (ValueError, AssertionError):  # a bad pythons entry or rule: reported on its own
        return []


def _check_toolchains(config: ImagesConfig, report: Problems) -> None:
    for distro in config.build.llvm:
        if distro not in config.distros:
            report(("build", "llvm", distro), f'unknown distro "{distro}"',
                   f"one of: {', '.join(config.distros)}")
    if not any(p.toolchain == "clang" or any(_on(p, k) for k, _ in _CLANG_ONLY)
               for p in config.profiles.values()):
        return
    cells = _source_cells(config)
    for name, prof in config.profiles.items():
        path: Path_ = ("profiles", name)
        if prof.toolchain != "clang":
            for key, what in _CLANG_ONLY:
                if _on(prof, key):
                    report(path + (key,), f"{what} needs the clang toolchain and this profile "
                           "compiles with gcc", f"add toolchain: clang to profiles.{name} or "
                           f"remove {key}")
            continue
        _check_clang_profile(config, report, name, prof, cells)


def _check_clang_profile(config: ImagesConfig, report: Problems, name: str, prof: Profile,
                         cells: list[Cell]) -> None:
    path: Path_ = ("profiles", name)
    if not cells:
        report(path + ("toolchain",), "toolchain: clang compiles CPython from source and no cell "
               "is built by method source (deadsnakes installs the PPA's own build, nothing is "
               "compiled; python-build runs pyenv's recipe with gcc)",
               "use toolchain: gcc, or add method source to a distro")
        return
    needs_19 = prof.tail_call or prof.jit != "off"
    for distro in sorted({c.distro for c in cells}):
        llvm = llvm_for(config.build, distro)
        if llvm is None:
            report(path + ("toolchain",), f"clang: no LLVM version is known for {distro}'s "
                   "archive (clang-N, llvm-N, lld-N)",
                   f"set build.llvm.{distro} to the N its archive has, or use toolchain: gcc")
        elif needs_19 and llvm < LLVM_FOR_314_OPTIONS:
            key = "tail_call" if prof.tail_call else "jit"
            report(path + (key,), f"{key} needs LLVM {LLVM_FOR_314_OPTIONS} and {distro}'s "
                   f"archive has LLVM {llvm} (build.llvm)",
                   f"set build.llvm.{distro}: {LLVM_FOR_314_OPTIONS} if its archive has clang-"
                   f"{LLVM_FOR_314_OPTIONS}, or remove {key} from profiles.{name}")
    if prof.bolt and config.build.native_platform != "linux/amd64":
        report(path + ("bolt",), f"BOLT is built for x86-64 only here and the native compiles "
               f"run on {config.build.native_platform} (build.native_platform)",
               f"remove bolt from profiles.{name} (cross compiles never get it)")
    for key, what in _CLANG_ONLY[1:]:
        if not _on(prof, key):
            continue
        eligible = [c for c in cells if matrix.minor_key(c.base_minor)[:2] >= TAIL_CALL_MINOR
                    and not (key == "jit" and c.freethreaded)]
        below = sorted({c.minor for c in cells if c not in eligible}, key=matrix.minor_key)
        if not eligible:
            report(path + (key,), f"{what} is CPython 3.14+"
                   f"{' (not free-threaded)' if key == 'jit' else ''} and every source compile "
                   f"here is of {', '.join(below)}",
                   f"remove {key} from profiles.{name}, or add Python 3.14 to pythons")
        elif below:
            report.warn(path + (key,), f"{what} is CPython 3.14+"
                        f"{' (not free-threaded)' if key == 'jit' else ''}: "
                        f"{', '.join(below)} are compiled without it (label optimizations)")
