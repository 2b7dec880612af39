"""cosign, through runner.py: sign images by digest, attest SBOMs and provenance to a digest,
verify both. Written against cosign 2.5 (Debian trixie's, scripts/provision-host.sh step 10).

Flags, for a private registry without a transparency log (images.yaml ``signing.tlog: false``,
the default):
- ``sign``/``attest --tlog-upload=false``: nothing goes to Rekor; the public log at
  rekor.sigstore.dev would otherwise publish every image name and digest of the private
  registry, and build hosts cannot reach it anyway;
- ``verify``/``verify-attestation --insecure-ignore-tlog=true``: without it cosign requires a
  Rekor inclusion proof and first fetches Sigstore's TUF root from the internet (checked here:
  it fails with "tuf: failed to download 13.root.json"); the signature is still checked
  against the public key. cosign prints a warning saying so, which is expected;
- ``--allow-http-registry=true`` for loopback registries only (127.0.0.1:5000, the ones the
  registry client speaks plain HTTP to); never ``--allow-insecure-registry`` (it turns off TLS
  certificate checks);
- ``--yes`` (no prompt in CI), ``attest --replace`` (re-attesting a digest replaces the
  attestation of the same predicate type instead of piling up another).
With ``signing.tlog: true`` the signatures go to Rekor and verify requires them.
Keys: a file, env://VAR or a KMS URI (config.grammar); the password of file and env:// keys is
passed in COSIGN_PASSWORD from the variable ``signing.password_env`` names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import imageref, runner
from orchestrator.config import grammar
from orchestrator.config.publish import Signing
from orchestrator.errors import CommandError, ConfigError, SupplyChainError, UsageError
from orchestrator.perf import predicate as perf_predicate
from orchestrator.registry import scheme_for

Runner = Callable[..., runner.Completed]

# cosign --type -> the in-toto predicateType it writes (pkg/cosign/attestation).
PREDICATE_TYPES = {
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "openvex": "https://openvex.dev/ns",
    # the performance record: the orchestrator's own type, which cosign takes as it is
    perf_predicate.PREDICATE_TYPE: perf_predicate.PREDICATE_TYPE,
}


@dataclass(frozen=True)
class Keys:
    """What cosign gets: the signing key (None: verify only) and the public key, resolved."""

    key: str | None
    public_key: str
    password_env: str = "COSIGN_PASSWORD"
    tlog: bool = False


def _resolve(ref: str, root: Path) -> str:
    return str(root / ref) if grammar.is_file(ref) else ref


def keys_for(signing: Signing, root: Path, config_file: str = "images.yaml") -> Keys:
    """images.yaml's signing: with file references made relative to its directory ``root``."""
    public = signing.public_key or grammar.default_public_key(signing.key)
    if public is None:  # pragma: no cover - config.checks.signing refuses such a file
        raise ConfigError(config_file, "signing.public_key", "not set", "add it")
    resolved = _resolve(public, root)
    if grammar.is_file(public) and not Path(resolved).is_file():
        raise ConfigError(config_file, "signing.public_key", f"{resolved} does not exist",
                          "commit the public key (cosign.pub) or pass --key")
    return Keys(_resolve(signing.key, root), resolved, signing.password_env, signing.tlog)


def keys_from_option(public_key: str, tlog: bool = False) -> Keys:
    """``orchestrator verify --key``: a public key file (relative to the current directory) or
    URI; no images.yaml needed."""
    if grammar.is_file(public_key) and not Path(public_key).is_file():
        raise UsageError(f"--key {public_key}: no such file; pass the public key (cosign.pub), "
                         "env://VAR or a KMS URI")
    return Keys(None, public_key, tlog=tlog)


@dataclass(frozen=True)
class Verified:
    ref: str
    ok: bool
    reason: str = ""  # why not (cosign's error line)
    statements: tuple[dict[str, Any], ...] = ()  # verify-attestation: the in-toto statements


def digest_of(ref: str) -> str:
    """The sha256:... of host/repo@sha256:...; anything else is refused (sign by digest only)."""
    digest = imageref.parse(ref).digest
    if not grammar.DIGEST.fullmatch(digest):
        raise SupplyChainError(f"{ref}: not a digest reference (host/repo@sha256:...); cosign "
                               "signs and verifies by digest only")
    return digest


class Cosign:
    """cosign with ``keys``; ``env``: the environment it runs in (Settings.child_env: ours and
    DOCKER_CONFIG), where the password variable of the key is looked up too."""

    def __init__(self, keys: Keys, env: Mapping[str, str], *, run: Runner | None = None,
                 binary: str = "cosign", timeout: float = 600) -> None:
        self.keys, self.binary, self.timeout = keys, binary, timeout
        self.env = dict(env)
        self._run: Runner = run if run is not None else runner.run

    # ----------------------------------------------------------------- helpers

    def _registry_flags(self, refs: Sequence[str]) -> list[str]:
        hosts = {imageref.parse(r).host for r in refs}
        return ["--allow-http-registry=true"] if any(scheme_for(h) == "http" for h in hosts) else []

    def check_signing_key(self) -> None:
        """SupplyChainError unless sign/attest can start: the key file is there and the
        password variable is set (a KMS key is checked by cosign itself)."""
        self._signing_env()

    def _signing_env(self) -> dict[str, str]:
        key = self.keys.key
        if key is None:
            raise SupplyChainError("no signing key (signing.key in images.yaml)")
        kind = grammar.scheme(key)
        if kind == "":
            if not Path(key).is_file():
                raise SupplyChainError(f"signing.key: {key} does not exist; write the private key "
                                       "there before the push (e.g. from a CI secret file)")
        elif kind in grammar.KMS_SCHEMES:
            return dict(self.env)
        password = self.env.get(self.keys.password_env)
        if password is None:
            raise SupplyChainError(
                f"environment: {self.keys.password_env} is not set: cosign needs the password of "
                f"signing.key ({key}); set it (an empty string for a key without one)")
        return {**self.env, "COSIGN_PASSWORD": password}

    def _tlog_upload(self) -> str:
        return f"--tlog-upload={'true' if self.keys.tlog else 'false'}"

    def _verify_flags(self) -> list[str]:
        return [] if self.keys.tlog else ["--insecure-ignore-tlog=true"]

    # ----------------------------------------------------------------- sign, attest

    def sign(self, refs: Sequence[str]) -> None:
        """Sign each host/repo@digest (an index and its platform manifests: one call)."""
        for r in refs:
            digest_of(r)
        argv = [self.binary, "sign", "--key", str(self.keys.key), self._tlog_upload(), "--yes",
                *self._registry_flags(refs), *refs]
        self._call(argv, self._signing_env(), "sign")

    def attest(self, ref: str, predicate: Path, predicate_type: str) -> None:
        """Attach ``predicate`` (an SPDX document, a SLSA provenance predicate) to ``ref``."""
        digest_of(ref)
        if predicate_type not in PREDICATE_TYPES:
            raise SupplyChainError(f"unknown predicate type {predicate_type!r}")
        argv = [self.binary, "attest", "--key", str(self.keys.key), self._tlog_upload(), "--yes",
                "--replace", "--type", predicate_type, "--predicate", str(predicate),
                *self._registry_flags([ref]), ref]
        self._call(argv, self._signing_env(), f"attest ({predicate_type})")

    def _call(self, argv: list[str], env: dict[str, str], what: str) -> None:
        try:
            self._run(argv, env=env, timeout=self.timeout)
        except CommandError as exc:
            raise SupplyChainError(f"cosign {what} of {argv[-1]} failed (exit {exc.returncode}): "
                                   f"{cosign_error(exc.stderr)}") from None

    # ----------------------------------------------------------------- verify

    def verify(self, ref: str) -> Verified:
        """The signature of ``ref`` (host/repo@digest) against the public key."""
        digest_of(ref)
        argv = [self.binary, "verify", "--key", self.keys.public_key, *self._verify_flags(),
                *self._registry_flags([ref]), ref]
        done = self._run(argv, env=dict(self.env), timeout=self.timeout, check=False)
        if done.returncode != 0:
            return Verified(ref, False, cosign_error(done.stderr))
        return Verified(ref, True)

    def verify_attestation(self, ref: str, predicate_type: str) -> Verified:
        """The attestations of ``predicate_type`` attached to ``ref``: signed with the key, of
        that type, about that digest."""
        digest = digest_of(ref)
        argv = [self.binary, "verify-attestation", "--key", self.keys.public_key,
                *self._verify_flags(), "--type", predicate_type, *self._registry_flags([ref]), ref]
        done = self._run(argv, env=dict(self.env), timeout=self.timeout, check=False)
        if done.returncode != 0:
            return Verified(ref, False, cosign_error(done.stderr))
        try:
            statements = tuple(decode_envelopes(done.stdout))
        except SupplyChainError as exc:
            return Verified(ref, False, f"unreadable attestation output ({exc})")
        want = PREDICATE_TYPES[predicate_type]
        mine = [s for s in statements if s.get("predicateType") == want
                and any(sub.get("digest", {}).get("sha256") == digest.removeprefix("sha256:")
                        for sub in s.get("subject") or [])]
        if not mine:
            return Verified(ref, False, f"no {want} attestation about {digest}", statements)
        return Verified(ref, True, "", tuple(mine))


def cosign_error(stderr: str) -> str:
    """cosign's reason ("no signatures found", "no matching signatures: ...") from its stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Error: "):
            return ln.removeprefix("Error: ").rstrip(": ")
    return lines[-1] if lines else "cosign failed without a message"


def decode_envelopes(stdout: str) -> list[dict[str, Any]]:
    """The in-toto statements in verify-attestation's output (one DSSE envelope per line)."""
    out = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            envelope = json.loads(line)
            statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise SupplyChainError(f"not a DSSE envelope: {exc}") from None
        if not isinstance(statement, dict):
            raise SupplyChainError("a DSSE payload is not an in-toto statement")
        out.append(statement)
    return out
