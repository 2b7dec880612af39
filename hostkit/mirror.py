"""``mirror``: $ORCH_MIRROR_DIR/ftp/python/<ver>/Python-<ver>.tgz|.tar.xz[.asc] like python.org.

For each release of the plan: the Debian or Ubuntu source files (debsrc, hashes from the signed
Sources index) unless the mirror has its tarball; its sha256 against pyenv's pin
(``lock_sources.PyenvDefinitions``; a hard requirement for the reference release) and against
the organisation's ``images.lock`` (a release it pins must be those bytes: 3.14.4 from Ubuntu
resolute's pool is python.org's Python-3.14.4.tar.xz); a tarball that differs from any of them
is removed from the mirror and provisioning stops, so it is never served. Where each tarball's
bytes were checked is written beside it (``<tarball>.checked``). The release
manager key from debian/upstream/signing-key.asc of the reference release into keys/; an
offline ``gpg --verify`` of every tarball that has an .asc, by the key the package expects
for its minor; then SHA256SUMS. With everything in place nothing is downloaded.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from hostkit import debsrc
from hostkit.common import HostEnv, HostkitError, Out, Run, file_hash, put_file, update_sha256sums
from hostkit.gpg import SignatureRefused, TempGpg
from hostkit.matrix import MirrorPlan
from orchestrator import runner
from orchestrator.lock.sources import PyenvDefinitions

KEY_MEMBER = "debian/upstream/signing-key.asc"


def mirror_name(source_file: str, package: str, version: str) -> str | None:
    """python.org's name of a Debian upstream file: python3.13_3.13.5.orig.tar.xz.asc ->
    Python-3.13.5.tar.xz.asc; None for anything else."""
    m = re.fullmatch(rf"{re.escape(package)}_{re.escape(version)}\.orig\.tar\.(gz|xz)(\.asc)?", source_file)
    if not m:
        return None
    return f"Python-{version}.{'tgz' if m.group(1) == 'gz' else 'tar.xz'}{m.group(2) or ''}"


class Mirror:
    def __init__(self, env: HostEnv, plan: MirrorPlan, out: Out, run: Run = runner.run) -> None:
        self.env, self.plan, self.out, self.run = env, plan, out, run
        self.python = env.mirror_dir / plan.python_dir
        self.pyenv = PyenvDefinitions(env.pyenv_root, plan.python_keys)

    def tarballs(self, version: str) -> list[Path]:
        return [p for name in self.plan.tarballs(version) if (p := self.python / version / name).is_file()]

    def key_path(self, fingerprint: str) -> Path:
        return self.env.mirror_dir / self.plan.key_file(fingerprint)

    def reference_key(self) -> str:
        fpr = self.plan.fingerprint(self.plan.reference)
        if not fpr:
            raise HostkitError(f"the package knows no OpenPGP release key for {self.plan.reference} "
                               "(orchestrator.config.eol.PYTHON_SIGNING_KEY)")
        return fpr

    def update(self) -> None:
        plan = self.plan
        fpr = self.reference_key()
        org_pins = self.org_pins()  # before any download: an unreadable lock stops here
        key_dst = self.key_path(fpr)
        missing = [v for v in plan.versions if not self.tarballs(v)]
        need_key = not key_dst.is_file()
        self.out.say(f"  CPython releases from {self.env.matrix.name} ({self.env.matrix}): "
                     f"{', '.join(plan.versions)} (reference {plan.reference})")
        fetcher = None
        if missing or need_key:
            apt = debsrc.PrivateApt(self.env.state_dir / "apt-src", self.run)
            apt.prepare(self.env, self.out)
            fetcher = debsrc.Fetcher(apt, self.env.state_dir / "src-cache", self.out, self.run)
        else:
            self.out.skip("all CPython tarballs and the signing key are in the mirror; no Debian downloads")
        debian_tar = None
        for version in plan.versions:
            upstream = version in missing
            debian = need_key and version == plan.reference
            if fetcher and (upstream or debian):
                debian_tar = self._fetch(fetcher, version, upstream, debian) or debian_tar
            self.check_pyenv_pin(version)
            self.check_org_pin(version, org_pins)
        if need_key:
            self.install_key(fpr, debian_tar, key_dst)
        else:
            self.out.skip(f"{key_dst} present")
        for version in plan.versions:
            self.verify_signatures(version)
        update_sha256sums(self.env.mirror_dir, self.out)

    def _fetch(self, fetcher: debsrc.Fetcher, version: str, upstream: bool, debian: bool) -> Path | None:
        package = debsrc.source_package(version)
        debian_tar = None
        files = fetcher.fetch(version, upstream, debian)
        if not files:
            raise HostkitError(f"no source files for {package} {version}")
        for f in files:
            if ".debian.tar." in f.name:
                debian_tar = f
            elif name := mirror_name(f.name, package, version):
                dst = self.python / version / name
                if put_file(f, dst, self.out):
                    where = fetcher.checked.get(f.name, "the signed Sources index")
                    self._record(dst, f"sha256 {file_hash(f)}: {where}")
        return debian_tar

    def _record(self, tarball: Path, line: str) -> None:
        """Where ``tarball``'s bytes were checked, beside it (``<name>.checked``)."""
        note = tarball.with_name(tarball.name + ".checked")
        old = note.read_text().splitlines() if note.is_file() else []
        if line not in old:
            note.write_text("\n".join([*old, line]) + "\n")

    def _refuse(self, path: Path, message: str) -> HostkitError:
        """A tarball whose bytes are not the pinned ones leaves the mirror: it is never served."""
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".checked").unlink(missing_ok=True)
        return HostkitError(f"{message}; removed from the mirror")

    def org_pins(self) -> dict[str, tuple[str, str]]:
        """{X.Y.Z: (tarball name, sha256)} that the organisation's images.lock pins."""
        lock_path = self.env.org_lock
        try:
            data = yaml.safe_load(lock_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise HostkitError(f"cannot read the organisation's lock {lock_path}: {exc}") from None
        pythons = data.get("pythons") or {} if isinstance(data, dict) else None
        if not isinstance(pythons, dict):
            raise HostkitError(f"cannot read the organisation's lock {lock_path}: no pythons mapping")
        pins = {}
        for minor, entry in pythons.items():
            if isinstance(entry, dict) and entry.get("url") and entry.get("sha256"):
                if not entry.get("version"):
                    raise HostkitError(f"cannot read the organisation's lock {lock_path}: pythons: "
                                       f"{minor} pins a tarball but names no version")
                name = urllib.parse.urlsplit(str(entry["url"])).path.rsplit("/", 1)[-1]
                pins[str(entry["version"])] = (name, str(entry["sha256"]))
        return pins

    def check_org_pin(self, version: str, pins: dict[str, tuple[str, str]]) -> None:
        """A release the organisation's lock pins must be served with exactly its bytes."""
        pin = pins.get(version)
        if pin is None:
            return
        name, want = pin
        path = self.python / version / name
        if not path.is_file():
            raise HostkitError(f"{self.env.org_lock} pins {name} (sha256 {want}) but the mirror "
                               f"has no {name} for {version}")
        actual = file_hash(path)
        if actual != want:
            raise self._refuse(path, f"{name} sha256 {actual} != {want} pinned by "
                               f"{self.env.org_lock}: not python.org's tarball")
        self._record(path, f"sha256 {actual}: equals the pin of {self.env.org_lock.name}")
        self.out.ok(f"{name} sha256 equals the organisation's pin in {self.env.org_lock.name} ({actual})")

    def check_pyenv_pin(self, version: str) -> None:
        """Upstream identity: each tarball's sha256 against pyenv's pin for that file name."""
        found = self.tarballs(version)
        if not found:
            raise HostkitError(f"no tarball for CPython {version} in {self.python / version}")
        pins = self.pyenv.pins(version) or {}
        for path in found:
            actual = file_hash(path)
            pin = pins.get(path.name)
            if pin is None:
                if version == self.plan.reference:
                    raise HostkitError(f"pyenv has no sha256 pin for {path.name} (needed to check "
                                       f"{version}; pyenv checkout {self.env.pyenv_root})")
                self.out.say(f"  {path.name} sha256 {actual} (no pyenv definition to compare with)")
            elif pin[1] == actual:
                self._record(path, f"sha256 {actual}: equals pyenv's pin ({pin[0]})")
                self.out.ok(f"{path.name} sha256 matches pyenv's pin ({actual})")
            else:
                raise self._refuse(path, f"{path.name} sha256 {actual} != pyenv pin {pin[1]} - "
                                   "not the upstream tarball")

    def install_key(self, fpr: str, debian_tar: Path | None, dst: Path) -> None:
        """keys/<fpr>.asc from debian/upstream/signing-key.asc of the reference release."""
        ref = self.plan.reference
        if debian_tar is None:
            raise HostkitError(f"no debian tarball for {ref} to take the signing key from")
        try:
            with tarfile.open(debian_tar) as tar:
                member = tar.extractfile(KEY_MEMBER)
                armored = member.read() if member else None
        except (KeyError, tarfile.TarError, OSError):
            armored = None
        if not armored:
            raise HostkitError(f"{debian_tar} has no {KEY_MEMBER}")
        dst.parent.mkdir(parents=True, exist_ok=True)
        with TempGpg(self.run) as gpg, tempfile.TemporaryDirectory(prefix="hostkit-key.") as tmp:
            src = Path(tmp) / "signing-key.asc"
            src.write_bytes(armored)
            gpg.import_key(src)
            uid = gpg.uid(fpr)
            if uid is None:
                raise HostkitError(f"{KEY_MEMBER} of {ref} does not contain {fpr}")
            part = dst.with_name(dst.name + ".part")
            gpg.export(fpr, part)
            part.chmod(0o644)
            part.replace(dst)
        self.out.did(f"{dst} ({uid})")

    def verify_signatures(self, version: str) -> None:
        for tarball in self.tarballs(version):
            sig = tarball.with_name(tarball.name + ".asc")
            if not sig.is_file():
                continue
            fpr = self.plan.fingerprint(version)
            key = self.key_path(fpr) if fpr else None
            if key is None or not key.is_file():
                raise HostkitError(f"{sig.name}: no release manager key "
                                   f"{fpr or '(Sigstore-only minor)'} in the mirror to verify it with")
            try:
                with TempGpg(self.run) as gpg:
                    gpg.import_key(key)
                    signer = gpg.verify(sig, tarball)
            except SignatureRefused as exc:
                if exc.verdict.status != "EXPKEYSIG":
                    raise
                self._withdraw_signature(sig, tarball, exc)
                continue
            if signer != fpr:
                raise HostkitError(f"gpg --verify {tarball.name}: signature is not by {fpr} (by {signer})")
            self.out.ok(f"gpg --verify {tarball.name}: good signature by {fpr} "
                        "(offline, temporary GNUPGHOME)")


    def _withdraw_signature(self, sig: Path, tarball: Path, exc: SignatureRefused) -> None:
        """A signature by a key that has expired since is not served (it could not be checked
        as the builds check it: they refuse EXPKEYSIG); the tarball stays, pinned by the
        signed Sources index, pyenv's pin and the lock. The fix is a copy of the release
        manager's key with its expiry extended (keys.openpgp.org), pinned in its place."""
        sig.unlink()
        sig.with_name(sig.name + ".checked").unlink(missing_ok=True)
        self._record(tarball, f"{sig.name} not served: {exc.verdict.describe()}")
        self.out.warn(f"{sig.name} not served: {exc.verdict.describe()}; every copy of the key "
                      "reachable here (Debian's debian/upstream/signing-key.asc) has expired: "
                      "pin a copy with its expiry extended to serve the signature again")


def check_served(env: HostEnv, plan: MirrorPlan, out: Out, timeout: float = 10.0) -> None:
    """The started mirror lists every release folder and serves every tarball."""
    base = f"{env.mirror_url}{plan.python_dir.as_posix()}/"
    listing = _get(base, timeout).decode("utf-8", "replace")
    for version in plan.versions:
        if f'href="{version}/"' not in listing:
            raise HostkitError(f"{base} does not list {version}/")
        for name in plan.tarballs(version):
            if (env.mirror_dir / plan.python_dir / version / name).is_file():
                _get(f"{base}{version}/{name}", timeout, method="HEAD")
    out.ok(f"mirror answers at {base} ({', '.join(plan.versions)})")


def _get(url: str, timeout: float, method: str = "GET") -> bytes:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as r:
            data: bytes = r.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        raise HostkitError(f"{url} not served ({getattr(exc, 'reason', exc)})") from None
