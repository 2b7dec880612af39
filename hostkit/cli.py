"""``python -m hostkit <command>`` (see the package docstring). Only ``main`` exits."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from hostkit import matrix
from hostkit.common import HostEnv, Out, update_sha256sums
from hostkit.mirror import Mirror, check_served
from hostkit.pyenv import PyenvTarball
from hostkit.summary import Summary, local_registry
from orchestrator import log
from orchestrator.errors import CommandError, ExitCode, OrchestratorError, RegistryError


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
    return p


def run(argv: Sequence[str], out: Out) -> int:
    args = parser().parse_args(argv)
    env = HostEnv.from_environ()
    if args.matrix:
        env = dataclasses.replace(env, matrix=args.matrix)
    if args.command == "sums":
        update_sha256sums(env.mirror_dir, out)
        return 0
    if args.command == "registry-digest":
        try:
            digest = local_registry(env).digest(args.repo, args.tag)
        except RegistryError as exc:
            raise RegistryError(f"registry {env.registry} (ORCH_REGISTRY) did not answer for "
                                f"{args.repo}:{args.tag}") from exc
        if digest:
            print(digest)
        return 0 if digest else 1
    if args.command == "summary":
        Summary(env, out).print(args.images)
        return 0
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
