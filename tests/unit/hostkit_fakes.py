"""Fakes for the host kit's unit tests: a runner that answers apt, curl, gpg and gpgconf from
recorded text and an in-memory archive (no network, no Docker, no real keyring)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hostkit.common import HostEnv
from orchestrator.errors import CommandError
from orchestrator.runner import Completed
from tests.unit.helpers import FIXTURES

RECORDED = FIXTURES / "hostkit"
# "some matrix" for the host kit's tests: the e2e matrix before 3.14 joined it (3.11.2, 3.12
# deadsnakes, 3.13.15; reference 3.13.5), fixed so the tests do not follow the e2e line-up
MATRIX = RECORDED / "images.yaml"
KEY_313 = "7169605F62C751356D054A26A821E680E5FA6305"
ARCHIVE = "http://deb.debian.org/debian/pool/main/p"
UBUNTU_POOL = "http://archive.ubuntu.com/ubuntu/pool/main/p"
XZ_3144 = b"Python-3.14.4.tar.xz bytes"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def armored_key(fpr: str) -> bytes:
    return (f"-----BEGIN PGP PUBLIC KEY BLOCK-----\nfake key {fpr}\n"
            "-----END PGP PUBLIC KEY BLOCK-----\n").encode()


def signature(fpr: str, data: bytes) -> bytes:
    """What the fake gpg accepts as a detached signature of ``data`` by ``fpr``."""
    return f"fake signature by {fpr} of {sha(data)}\n".encode()


def debian_tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Release:
    """One Debian source package revision in the fake archive: its files by name."""

    package: str
    revision: str
    files: dict[str, bytes]
    pool: str = ARCHIVE

    def uri(self, name: str) -> str:
        return f"{self.pool}/{self.package}/{name}"

    def print_uris(self) -> str:
        """apt-get source --print-uris as apt prints it (hashes of ``files``)."""
        lines = ["Reading package lists...", "Need to get 1 kB of source archives."]
        for name, data in self.files.items():
            lines.append(f"'{self.uri(name)}' {name} {len(data)} SHA256:{sha(data)}")
        return "\n".join(lines) + "\n"


def releases() -> list[Release]:
    """3.11.2 (.tgz, no .asc), 3.13.5 (.tar.xz + .asc by the 3.13 key, debian/ tarball with the
    key), 3.13.15 (.tar.xz) from Debian's pool; 3.14.4 (.tar.xz, no .asc: Sigstore only) from
    Ubuntu's, revisions 3.14.4-1ubuntu0.2 (resolute-updates/-security) and 3.14.4-1 (resolute),
    one orig tarball: the shapes of the real source packages."""
    xz_3135 = b"Python-3.13.5.tar.xz bytes"
    return [
        Release("python3.11", "3.11.2-6+deb12u9", {
            "python3.11_3.11.2-6+deb12u9.dsc": b"dsc",
            "python3.11_3.11.2.orig.tar.gz": b"Python-3.11.2.tgz bytes",
            "python3.11_3.11.2-6+deb12u9.debian.tar.xz": debian_tarball({}),
        }),
        Release("python3.13", "3.13.5-2+deb13u5", {
            "python3.13_3.13.5-2+deb13u5.dsc": b"dsc",
            "python3.13_3.13.5.orig.tar.xz": xz_3135,
            "python3.13_3.13.5.orig.tar.xz.asc": signature(KEY_313, xz_3135),
            "python3.13_3.13.5-2+deb13u5.debian.tar.xz": debian_tarball({
                "debian/upstream/signing-key.asc": armored_key(KEY_313)}),
        }),
        Release("python3.13", "3.13.15-1", {
            "python3.13_3.13.15-1.dsc": b"dsc",
            "python3.13_3.13.15.orig.tar.xz": b"Python-3.13.15.tar.xz bytes",
            "python3.13_3.13.15-1.debian.tar.xz": debian_tarball({}),
        }),
        *(Release("python3.14", rev, {
            f"python3.14_{rev}.dsc": b"dsc",  # answers 404 through this machine's proxy
            "python3.14_3.14.4.orig.tar.xz": XZ_3144,
            f"python3.14_{rev}.debian.tar.xz": debian_tarball({}),
        }, pool=UBUNTU_POOL) for rev in ("3.14.4-1ubuntu0.2", "3.14.4-1")),
    ]


@dataclass
class FakeRun:
    """``runner.run`` for apt-cache/apt-get (private state), curl, gpg, gpgconf."""

    releases: list[Release]
    showsrc: dict[str, str] = field(default_factory=lambda: {
        "python3.11": recorded("showsrc-python3.11.txt"), "python3.13": recorded("showsrc-python3.13.txt"),
        "python3.14": recorded("showsrc-python3.14.txt")})
    served: dict[str, bytes] = field(default_factory=dict)  # URI -> bytes curl gets (default: the file)
    gone: set[str] = field(default_factory=set)  # URIs that answer 404
    on_update: Callable[[], None] | None = None
    calls: list[list[str]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # fingerprints imported (all homes)
    expired: set[str] = field(default_factory=set)  # keys whose signatures gpg reports EXPKEYSIG

    def programs(self) -> list[str]:
        return [c[0] for c in self.calls]

    def __call__(self, argv: Sequence[str | Path], *, check: bool = True, input: str | None = None,
                 timeout: float | None = None, cwd: Path | None = None, env: dict[str, str] | None = None,
                 on_line: Callable[[str], None] | None = None) -> Completed:
        args = [str(a) for a in argv]
        self.calls.append(args)
        handler = getattr(self, "_" + args[0].replace("-", "_"))
        code, out, err = handler(args)
        if check and code != 0:
            raise CommandError(args, code, err, out)
        return Completed(args, code, out, err, 0.0)

    def _apt_cache(self, args: list[str]) -> tuple[int, str, str]:
        return 0, self.showsrc.get(args[-1], ""), ""

    def _apt_get(self, args: list[str]) -> tuple[int, str, str]:
        if "update" in args:
            if self.on_update:
                self.on_update()
            return 0, "", ""
        package, _, revision = args[-1].partition("=")
        for r in self.releases:
            if (r.package, r.revision) == (package, revision):
                return 0, r.print_uris(), ""
        return 100, "", f"E: Can not find version '{revision}' of package '{package}'\n"

    def _curl(self, args: list[str]) -> tuple[int, str, str]:
        uri, dst = args[-1], Path(args[args.index("-o") + 1])
        if uri in self.gone:
            return 22, "", f"curl: (22) The requested URL returned error: 404 ({uri})\n"
        if uri in self.served:
            dst.write_bytes(self.served[uri])
            return 0, "", ""
        for r in self.releases:
            for name, data in r.files.items():
                if uri == r.uri(name):
                    dst.write_bytes(data)
                    return 0, "", ""
        return 22, "", "curl: (22) The requested URL returned error: 404\n"

    def _gpg(self, args: list[str]) -> tuple[int, str, str]:
        if "--import" in args:
            text = Path(args[-1]).read_text()
            self.keys |= set(re.findall(r"fake key ([0-9A-F]{40})", text))
            return 0, "", ""
        if "--list-keys" in args:
            fpr = args[-1]
            if fpr not in self.keys:
                return 2, "", "gpg: error reading key: No public key\n"
            return 0, f"pub:-:4096:1:A821E680E5FA6305:1:::-:::scSC::::::23::0:\nfpr:::::::::{fpr}:\n" \
                      "uid:-::::1::ABC::Thomas Wouters <thomas@python.org>::::::::::0:\n", ""
        if "--export" in args:
            Path(args[args.index("--output") + 1]).write_bytes(armored_key(args[-1]))
            return 0, "", ""
        if "--verify" in args:
            sig, data = Path(args[-2]).read_text(), Path(args[-1]).read_bytes()
            m = re.fullmatch(r"fake signature by ([0-9A-F]{40}) of ([0-9a-f]{64})\n", sig)
            if not m or m.group(2) != sha(data) or m.group(1) not in self.keys:
                return 1, "[GNUPG:] BADSIG\n", "gpg: BAD signature\n"
            fpr = m.group(1)
            valid = f"[GNUPG:] VALIDSIG {fpr} 2025-06-11 0 4 0 1 10 00 {fpr}\n"
            if fpr in self.expired:  # gpg exits 0 for a signature by a key that expired since
                return 0, f"[GNUPG:] EXPKEYSIG {fpr[-16:]} X\n" + valid, ""
            return 0, "[GNUPG:] GOODSIG X\n" + valid, ""
        raise AssertionError(f"unexpected gpg call {args}")

    def _gpgconf(self, args: list[str]) -> tuple[int, str, str]:
        return 0, "", ""


def org_lock(path: Path, pins: dict[str, str]) -> Path:
    """An organisation's images.lock at ``path`` pinning {X.Y.Z: sha256} of python.org's .tar.xz
    (the shape `orchestrator lock` writes: pythons keyed by minor)."""
    pythons = {}
    for version, digest in pins.items():
        minor = ".".join(version.split(".")[:2])
        pythons[minor] = {"version": version, "sha256": digest,
                          "url": f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz",
                          "resolved_from": "pyenv definitions (.pyenv)"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"schema_version": 1, "pythons": pythons}, sort_keys=False))
    return path


def host_env(tmp: Path, **changes: object) -> HostEnv:
    """The host's settings with everything under ``tmp``: an Ubuntu keyring file that exists
    and an organisation's lock pinning 3.14.4 to ``XZ_3144`` (each written unless already there
    or replaced by ``changes``)."""
    keyring, lock = tmp / "keyrings" / "ubuntu-archive-keyring.gpg", tmp / "org" / "images.lock"
    env = HostEnv.from_environ({"ORCH_MIRROR_DIR": str(tmp / "mirror"), "ORCH_HOST_STATE": str(tmp / "state"),
                                "ORCH_PYENV_ROOT": str(tmp / "pyenv"), "ORCH_REGISTRY": "127.0.0.1:9",
                                "ORCH_UBUNTU_KEYRING": str(keyring), "ORCH_ORG_LOCK": str(lock)})
    if "ubuntu_keyring" not in changes and not keyring.is_file():
        keyring.parent.mkdir(parents=True, exist_ok=True)
        keyring.write_bytes(b"fake Ubuntu archive keyring\n")
    if "org_lock" not in changes and not lock.is_file():
        org_lock(lock, {"3.14.4": sha(XZ_3144)})
    return dataclasses.replace(env, **changes)  # type: ignore[arg-type]


def pyenv_definitions(root: Path, pins: dict[str, dict[str, str]]) -> None:
    """python-build definitions: {version: {tarball name: sha256}} (xz first, as pyenv writes)."""
    defs = root / "plugins" / "python-build" / "share" / "python-build"
    defs.mkdir(parents=True, exist_ok=True)
    for version, files in pins.items():
        lines = [f'install_package "Python-{version}" '
                 f'"https://www.python.org/ftp/python/{version}/{name}#{digest}" standard'
                 for name, digest in files.items()]
        (defs / version).write_text("\n".join(lines) + "\n")
