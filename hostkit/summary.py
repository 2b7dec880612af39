"""``registry-digest`` and ``summary``: what the host has, through the package's registry client
(``orchestrator.registry``: the manifest media types, plain HTTP for a loopback registry)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from hostkit.common import HostEnv, Out, Run
from orchestrator import imageref, runner
from orchestrator.errors import CommandError, RegistryError
from orchestrator.registry import Registry


def local_registry(env: HostEnv) -> Registry:
    """The loopback registry, asked once per call (as `curl -m 10`), no retries."""
    return Registry(env.registry, attempts=1, timeout=10)


def split_image(ref: str) -> tuple[str, str]:
    """debian:bookworm-slim -> (debian, bookworm-slim): a repository of the local registry as
    written (no Docker Hub library/ prefix) and its tag."""
    parsed = imageref.parse(ref)
    return parsed.name, parsed.tag_or_latest


class Summary:
    def __init__(self, env: HostEnv, out: Out, run: Run = runner.run,
                 registry: Registry | None = None) -> None:
        self.env, self.out, self.run = env, out, run
        self.registry = registry or local_registry(env)

    def or_else(self, fallback: str, argv: Sequence[str | Path], first_line: bool = False) -> str:
        """The command's output (stripped), or ``fallback`` when it fails or prints nothing."""
        try:
            res = self.run(argv, check=False, timeout=30)
        except CommandError:
            return fallback
        text = res.stdout.strip()
        if first_line:
            text = text.splitlines()[0] if text else ""
        return text if res.returncode == 0 and text else fallback

    def catalog(self) -> str:
        try:
            r = self.registry.request("GET", "/v2/_catalog")
        except RegistryError:
            return "not answering"
        return r.body.decode("utf-8", "replace").strip() if r.status == 200 else "not answering"

    def digest(self, image: str) -> str:
        try:
            return self.registry.digest(*split_image(image)) or "not in registry"
        except RegistryError:
            return "not in registry (registry not answering)"

    def lines(self, images: Sequence[str]) -> list[str]:
        env = self.env
        docker = shutil.which("docker") or ""
        client = self.or_else("?", ["docker", "version", "--format", "{{.Client.Version}}"])
        out = [
            "================ summary",
            f"docker client : {docker} {client}",
            "docker server : " + self.or_else("not running", [
                "docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]),
            f"dockerd       : {self.or_else('?', ['dockerd', '--version'])}",
            f"buildx        : {self.or_else('?', ['docker', 'buildx', 'version'])}",
            f"containerd    : {self.or_else('?', ['containerd', '--version'])}",
            f"runc          : {self.or_else('?', ['runc', '--version'], first_line=True)}",
            "cosign        : " + self.or_else("not installed",
                                                ["dpkg-query", "-W", "-f=${Version}", "cosign"]),
            f"registry      : http://{env.registry}/v2/_catalog -> {self.catalog()}",
        ]
        out += [f"image         : {env.registry}/{image} {self.digest(image)}" for image in images]
        out.append(f"mirror        : {env.mirror_url} (root {env.mirror_dir})")
        sums = env.mirror_dir / "SHA256SUMS"
        if sums.is_file():
            for line in sums.read_text(errors="replace").splitlines():
                digest, _, name = line.partition("  ")
                if name:
                    out.append(f"  {digest}  {env.mirror_url}{name}")
        return out

    def print(self, images: Sequence[str]) -> None:
        for line in self.lines(images):
            self.out.say(line)
