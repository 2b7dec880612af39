"""``python -m hostkit <command>`` (see the package docstring). Only ``main`` exits."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from hostkit import bases, dockerd, matrix
from hostkit.common import HostEnv, Out, update_sha256sums
from hostkit.mirror import Mirror, check_served
from hostkit.pyenv import PyenvTarball
from hostkit.summary import Summary, local_registry
from orchestrator import log
from orchestrator.errors import CommandError, ExitCode, OrchestratorError, RegistryError
from orchestrator.registry import Registry


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hostkit",
                                description="Build host content for the e2e matrix (provision-host.sh).")
    p.add_argument("--matrix", type=Path, help="the e2e matrix (default: $ORCH_E2E_MATRIX or "
                   "tests/e2e/images.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("mirror", help="CPython tarballs, signing key, SHA256SUMS")
    sub.add_parser("served", help="check the started mirror serves every release")
    sub.add_parser("pyenv", help="pyenv-<version>.tar.gz + SHA256SUMS")
    sub.add_parser("sums", help="rewrite $ORCH_MIRROR_DIR/SHA256SUMS")
    sub.add_parser("versions", help="print the CPython releases the mirror carries, one a line")
    d = sub.add_parser("registry-digest", help="print REPO:TAG's digest; exit 1 if there is no such tag "
                       "(2 or more: the registry did not answer)")
    d.add_argument("repo")
    d.add_argument("tag")
    s = sub.add_parser("summary", help="versions, registry catalog, image digests, mirror sha256s")
    s.add_argument("images", nargs="*", metavar="REPO:TAG", help="base images to show (in the registry)")
    _base_parsers(sub)
    _engine_parsers(sub)
    return p


def _series(text: str) -> str:
    """A version series argument: 26.1, 0.13."""
    if not dockerd.SERIES.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a version series such as 26.1")
    return text


def _base_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("suites", help="print 'suite repo tag family' per distro of the e2e matrix "
                       "(its base image $ORCH_REGISTRY/repo:tag)")
    s.add_argument("suites", nargs="*", metavar="SUITE", help="only these, in this order (default: all)")
    a = sub.add_parser("base-arches", help="print 'suite amd64 [arm64]': arm64 when asked for or "
                       "already in the registry (never narrowed)")
    a.add_argument("--arm64", default="", metavar="'SUITE ...'", help="the suites asked to have arm64")
    a.add_argument("suites", nargs="+", metavar="SUITE")
    b = sub.add_parser("base-state", help="print what step images does with SUITE's base: 'action "
                       "skip|push|index|rebuild', 'recipe ...', then 'digest D' or 'rootfs DIR' / "
                       "'image REF' lines to remove")
    b.add_argument("suite")
    b.add_argument("--recipe-version", required=True, help="provision-host.sh's BASE_RECIPE")
    b.add_argument("--arches", required=True, metavar="'amd64 [arm64]'")
    b.add_argument("--pockets", metavar="'POCKET ...'", help="an Ubuntu suite's pockets (required for one)")
    b.add_argument("--marker", required=True, type=Path, help="the suite's recipe marker file")


def _engine_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("debs-at", help="exit 0 if every PACKAGE is installed (in series X.Y), "
                       f"from stdin: dpkg-query -W -f='{dockerd.DPKG_FORMAT}' PACKAGE...")
    d.add_argument("specs", nargs="+", metavar="PACKAGE[=X.Y]")
    v = sub.add_parser("version-in", help="exit 0 if the version stdin shows (`docker buildx version`, "
                       "`dockerd --version`) is in series X.Y (1: another one; printed)")
    v.add_argument("kind", choices=sorted(dockerd.FORMATS))
    v.add_argument("series", type=_series, metavar="X.Y")
    sub.add_parser("docker-store", help="print containerd or classic: the image store of "
                   "stdin's `docker info --format '{{json .}}'`")
    c = sub.add_parser("dockerd-check", help="step dockerd's checks of the running daemon (store, "
                       "arm64, version X.Y, insecure range, driver)")
    c.add_argument("series", type=_series, metavar="X.Y")
    c.add_argument("--info", required=True, help="`docker info --format '{{json .}}'`")
    c.add_argument("--inspect", required=True, help="`docker buildx inspect`")


def run(argv: Sequence[str], out: Out) -> int:
    args = parser().parse_args(argv)
    env = HostEnv.from_environ()
    if args.matrix:
        env = dataclasses.replace(env, matrix=args.matrix)
    if args.command == "sums":
        update_sha256sums(env.mirror_dir, out)
        return 0
    if args.command == "registry-digest":
        digest = _digest(env, local_registry(env), args.repo, args.tag)
        if digest:
            print(digest)
        return 0 if digest else 1
    if args.command == "summary":
        Summary(env, out).print(args.images)
        return 0
    if args.command in ("suites", "base-arches", "base-state"):
        return base_command(args, env)
    if args.command in ("debs-at", "version-in", "docker-store", "dockerd-check"):
        return engine_command(args, env, out)
    plan = matrix.load(env.matrix)
    if args.command == "versions":
        print("\n".join(plan.versions))
    elif args.command == "mirror":
        Mirror(env, plan, out).update()
    elif args.command == "served":
        check_served(env, plan, out)
    elif args.command == "pyenv":
        PyenvTarball(env, plan, out).update()
    return 0


def base_command(args: argparse.Namespace, env: HostEnv) -> int:
    """suites, base-arches, base-state: the suites of the e2e matrix and their base images."""
    named = matrix.named_suites(env.matrix, [args.suite] if args.command == "base-state" else args.suites)
    if args.command == "suites":
        print("\n".join(s.line() for s in named))
        return 0
    registry = local_registry(env)

    def has_tag(repo: str, tag: str) -> bool:
        return _digest(env, registry, repo, tag) is not None

    if args.command == "base-arches":
        for suite in named:
            print(suite.name, *bases.wanted_arches(suite, args.arm64.split(), has_tag))
        return 0
    suite = named[0]
    wanted = bases.recipe(args.recipe_version, args.arches.split(), bases.pockets_for(suite, args.pockets))
    plan = bases.decide(suite, wanted, bases.read_marker(args.marker),
                        lambda: _digest(env, registry, suite.repo, suite.tag), args.marker.parent,
                        env.registry)
    print("\n".join(plan.lines()))
    return 0


def _digest(env: HostEnv, registry: Registry, repo: str, tag: str) -> str | None:
    try:
        return registry.digest(repo, tag)
    except RegistryError as exc:
        raise RegistryError(f"registry {env.registry} (ORCH_REGISTRY) did not answer for "
                            f"{repo}:{tag}") from exc


def engine_command(args: argparse.Namespace, env: HostEnv, out: Out) -> int:
    """debs-at, version-in, docker-store, dockerd-check: what dpkg and the engine said."""
    if args.command == "dockerd-check":
        dockerd.check_dockerd(dockerd.DockerInfo.parse(args.info), dockerd.Builder.parse(args.inspect),
                              args.series, env.registry, out)
        return 0
    text = sys.stdin.read()
    if args.command == "debs-at":
        ok, said = dockerd.debs_at(args.specs, text)
        print(said)
        return 0 if ok else 1
    if args.command == "docker-store":
        print("containerd" if dockerd.DockerInfo.parse(text).containerd_store else "classic")
        return 0
    version = dockerd.release(text, dockerd.FORMATS[args.kind])
    print(version or f"no {args.kind} version in {text.strip()[:80]!r}")
    return 0 if dockerd.in_series(version, args.series) else 1


def one_line(exc: BaseException) -> str:
    if isinstance(exc, CommandError):
        detail = (exc.stderr or exc.stdout).strip().splitlines()
        return f"{' '.join(exc.argv)} failed (exit {exc.returncode})" + (f": {detail[-1]}" if detail else "")
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return " ".join(str(exc).split("\n"))


def main(argv: Sequence[str] | None = None, out: Out | None = None) -> int:
    log.configure("console")  # the runner's debug lines stay quiet
    out = out or Out()
    try:
        return run(sys.argv[1:] if argv is None else argv, out)
    except OrchestratorError as exc:  # status >= 2: registry-digest says "no such tag" with 1
        print(f"[provision] ERROR: {one_line(exc)}", file=out.errors, flush=True)
        return max(int(exc.exit_code), int(ExitCode.BAD_INPUT))
    except OSError as exc:
        print(f"[provision] ERROR: {one_line(exc)}", file=out.errors, flush=True)
        return int(ExitCode.TOOL)
    except KeyboardInterrupt:
        return 130
