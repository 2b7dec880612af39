"""What a registry holds after a few releases of a matrix, from `orchestrator plan --json`.

Four builds of every cell: A (2026-11-21), B (a rebuild on 2026-12-01), B.1 (new content on
the same day again: publish takes the first free revision, <date>.1) and C (2026-12-05, every
CPython minor one patch release further). Moving tags point at the newest build carrying them;
immutable tags are never moved or deleted. Each image gets its own digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

from orchestrator.config import eol

REPO = Path(__file__).resolve().parents[2]
ORG = REPO / "images.yaml"
E2E = REPO / "tests" / "e2e" / "images.yaml"
DATES = {"A": "20261121", "B": "20261201", "C": "20261205"}
# The former immutable template (date last), for pins made before the date moved into the version.
FORMER_IMMUTABLE = "{version}-{variant}-{distro}{method}-{date}"


@dataclass(frozen=True)
class Cell:
    id: str
    python: str
    method: str
    distro: str
    variant: str

    @property
    def line(self) -> tuple[str, str, str]:
        """What a pin must keep: variant, distro and method (the Python minor may move on)."""
        return (self.variant, self.distro, self.method)


@dataclass(frozen=True)
class Image:
    build: str  # A, B, B.1, C
    cell: Cell
    version: str
    moving: tuple[str, ...]
    immutable: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(f"{self.cell.id} {self.build}".encode()).hexdigest()


@dataclass
class Registry:
    """The tags of one repository after builds A, B, B.1 and C (in that order)."""

    name: str  # registry/repository, as a FROM line names it
    images: list[Image] = field(default_factory=list)
    former: dict[str, Image] = field(default_factory=dict)  # cell id -> A under FORMER_IMMUTABLE

    def tags(self, former: bool = False) -> dict[str, str]:
        """tag -> digest; with ``former``, A's immutable tags of the former scheme as well."""
        out: dict[str, str] = {}
        for img in self.images:  # later builds move the moving tags
            out[img.immutable] = img.digest
            out.update(dict.fromkeys(img.moving, img.digest))
        if former:
            out.update({img.immutable: self.images_of(img.cell, "A")[0].digest
                        for img in self.former.values()})
        return out

    def images_of(self, cell: Cell, *builds: str) -> list[Image]:
        return [i for i in self.images if i.cell == cell and (not builds or i.build in builds)]

    def images_of_build(self, build: str) -> list[Image]:
        return [i for i in self.images if i.build == build]

    @property
    def cells(self) -> list[Cell]:
        return list(dict.fromkeys(i.cell for i in self.images))

    def owner(self, tag: str) -> Cell:
        for img in (*self.images, *self.former.values()):
            if tag == img.immutable or tag in img.moving:
                return img.cell
        raise KeyError(tag)


def config_copy(source: Path, dest: Path, immutable: str | None = None,
                flavours: bool = False) -> Path:
    """``source`` in ``dest``/images.yaml, without CA files (tags do not depend on them) and
    without free-threaded builds; ``flavours``: with the free-threaded build of every minor
    from 3.13 and the minimal variant (issue 18; not deadsnakes, which validation refuses for
    both)."""
    data = yaml.safe_load(source.read_text())
    data.pop("ca_certificates", None)
    if immutable is not None:
        data["tags"]["immutable"] = immutable
    if not flavours:  # the GIL builds only: test_flavours.py has the free-threaded tags
        for p in data["pythons"]:
            p.pop("freethreaded", None)
        data["exclude"] = [e for e in data.get("exclude", [])
                           if not str(e.get("python", "")).endswith("t")]
    if flavours:
        data["variants"]["minimal"] = {"size_budget_mb": 60}
        data.setdefault("exclude", []).append({"method": "deadsnakes", "variant": "minimal"})
        for p in data["pythons"]:
            minor = p["version"].rsplit(".", 1)[0] if p["version"].count(".") == 2 else p["version"]
            if Version(minor) >= Version("3.13"):
                p["freethreaded"] = True
                data["exclude"].append({"python": f"{minor}t", "method": "deadsnakes"})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "images.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest / "images.yaml"


def write_lock(config: Path, versions: dict[str, str]) -> None:
    """A lock with these CPython releases (checksums are made up: plan does not download)."""
    data = yaml.safe_load(config.read_text())
    src = data["sources"]
    lock: dict[str, Any] = {"schema_version": 1, "pythons": {}, "bases": {}}
    for minor, version in versions.items():
        url = f"{src['python']}{version}/Python-{version}.tar.xz"
        lock["pythons"][minor] = {
            "version": version, "url": url, "sha256": hashlib.sha256(version.encode()).hexdigest()}
        key = eol.PYTHON_SIGNING_KEY.get(minor)
        if eol.pgp_signed(minor) and key:  # signed releases are locked with their signature
            lock["pythons"][minor] |= {
                "signature_url": f"{url}.asc",
                "signing_key": {"fingerprint": key, "url": src["python_keys"].format(fingerprint=key)}}
    for name, distro in data["distros"].items():
        lock["bases"][name] = {"image": f"docker.io/{distro['image']}"}
    pyenv = src["pyenv"]["version"]
    lock["pyenv"] = {"version": pyenv, "url": src["pyenv"]["url"].format(version=pyenv)}
    config.with_suffix(".lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def plan(config: Path, date: str) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "plan", "--json", "--config",
                           str(config)], capture_output=True, text=True, cwd=REPO, check=False,
                          env={**env, "ORCH_DATE": date, "ORCH_LOG_FORMAT": "console"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    images: list[dict[str, Any]] = json.loads(proc.stdout)["images"]
    return images


def _image(build: str, raw: dict[str, Any], immutable: str | None = None) -> Image:
    cell = Cell(raw["id"], raw["python"], raw["method"], raw["distro"], raw["variant"])
    return Image(build, cell, raw["version"], tuple(raw["tags"]), immutable or raw["immutable_tag"])


def bump(version: str) -> str:
    major, minor, patch = version.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def releases(source: Path, work: Path, flavours: bool = False) -> Registry:
    """The registry after builds A, B, B.1 and C of the matrix in ``source`` (``flavours``: with
    its free-threaded and minimal cells, see config_copy)."""
    config = config_copy(source, work / "current", flavours=flavours)
    data = yaml.safe_load(config.read_text())
    if source == E2E:
        # the patch releases the e2e matrix pins (the mirror serves exactly those)
        versions = {p["version"].rpartition(".")[0]: p["version"] for p in data["pythons"]
                    if p["version"].count(".") == 2}
    else:
        lock = yaml.safe_load((source.parent / "images.lock").read_text())
        versions = {m: p["version"] for m, p in lock["pythons"].items()}
    pinned = {p["version"].rpartition(".")[0] for p in data["pythons"] if p["version"].count(".") == 2}
    reg = Registry(f"{data['publish']['registry']}/{data['publish']['repository']}")
    write_lock(config, versions)
    for build in ("A", "B"):
        reg.images += [_image(build, raw) for raw in plan(config, DATES[build])]
    reg.images += [_image("B.1", raw, raw["immutable_revision"].replace("{n}", "1"))
                   for raw in plan(config, DATES["B"])]
    write_lock(config, {m: v if m in pinned else bump(v) for m, v in versions.items()})
    reg.images += [_image("C", raw) for raw in plan(config, DATES["C"])]
    former = config_copy(source, work / "former", immutable=FORMER_IMMUTABLE, flavours=flavours)
    write_lock(former, versions)
    reg.former = {raw["id"]: _image("A", raw) for raw in plan(former, DATES["A"])}
    return reg
