"""Semantic checks of images.yaml's platforms and build settings (build.cache): one line per
problem, collected with the other semantic checks (checks_semantic)."""

from __future__ import annotations

from orchestrator.config.build import check_cache_template
from orchestrator.config.model import ImagesConfig
from orchestrator.config.yamlsafe import Path_, Problems


def check(config: ImagesConfig, report: Problems) -> None:
    _check_platforms(config, report)
    _check_cache(config, report)


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
