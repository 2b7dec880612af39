"""A fake cosign for unit tests: stands in for ``runner.run`` in ``orchestrator.supplychain.signing.Cosign``.

It parses the argv the orchestrator builds (so a wrong flag fails the test), keeps signatures
and attestations per digest and key pair (cosign.key signs what cosign.pub verifies; a KMS URI
is its own pair), and answers verify/verify-attestation with the exit codes, error lines and
DSSE output recorded from cosign 2.5.0 against the local registry (see orchestrator.supplychain.signing).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import runner
from orchestrator.errors import CommandError
from orchestrator.supplychain.signing import PREDICATE_TYPES

SIGN_FLAGS = {"--key", "--tlog-upload", "--yes", "--allow-http-registry"}
ATTEST_FLAGS = SIGN_FLAGS | {"--replace", "--type", "--predicate"}
VERIFY_FLAGS = {"--key", "--insecure-ignore-tlog", "--allow-http-registry", "--type"}


def public_of(key: str) -> str:
    return key.removesuffix(".key") + ".pub" if key.endswith(".key") else key


def _parse(args: list[str], allowed: set[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    refs: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            assert name in allowed, f"cosign has no flag {name} here (argv {args})"
            if not eq and name in ("--key", "--type", "--predicate"):
                i += 1
                value = args[i]
            flags[name] = value or "true"
        else:
            refs.append(arg)
        i += 1
    return flags, refs


@dataclass
class FakeCosign:
    signatures: dict[str, set[str]] = field(default_factory=dict)  # digest -> public keys
    # digest -> [(public key, statement)]
    attestations: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)  # subcommand -> stderr of a failure

    def __call__(self, argv: list[str], *, env: dict[str, str] | None = None,
                 timeout: float | None = None, check: bool = True, **_: Any) -> runner.Completed:
        assert argv[0] == "cosign", argv
        self.calls.append(argv)
        self.envs.append(dict(env or {}))
        sub, args = argv[1], argv[2:]
        if sub in self.fail:
            done = runner.Completed(argv, 1, "", self.fail[sub], 0.1)
        else:
            done = getattr(self, "_" + sub.replace("-", "_"))(argv, args)
        if check and done.returncode != 0:
            raise CommandError(argv, done.returncode, done.stderr, done.stdout)
        return done

    def subcommands(self) -> list[str]:
        return [c[1] for c in self.calls]

    @staticmethod
    def _digest(ref: str) -> str:
        digest = ref.partition("@")[2]
        assert digest.startswith("sha256:"), f"cosign called with a tag: {ref}"
        return digest

    def _sign(self, argv: list[str], args: list[str]) -> runner.Completed:
        flags, refs = _parse(args, SIGN_FLAGS)
        assert flags["--yes"] == "true" and refs
        for ref in refs:
            self.signatures.setdefault(self._digest(ref), set()).add(public_of(flags["--key"]))
        return runner.Completed(argv, 0, "", "Pushing signature to: x\n" * len(refs), 0.1)

    def _attest(self, argv: list[str], args: list[str]) -> runner.Completed:
        flags, (ref,) = _parse(args, ATTEST_FLAGS)
        predicate_type = PREDICATE_TYPES[flags["--type"]]
        digest = self._digest(ref)
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate_type,
            "subject": [{"name": ref.partition("@")[0],
                         "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicate": json.loads(Path(flags["--predicate"]).read_text()),
        }
        key = public_of(flags["--key"])
        atts = self.attestations.setdefault(digest, [])
        if flags.get("--replace") == "true":
            atts[:] = [(k, s) for k, s in atts if s["predicateType"] != predicate_type]
        atts.append((key, statement))
        return runner.Completed(argv, 0, f"Using payload from: {flags['--predicate']}", "", 0.1)

    @staticmethod
    def _failed(argv: list[str], reason: str) -> runner.Completed:
        stderr = (f"WARNING: Skipping tlog verification is an insecure practice ...\n"
                  f"Error: {reason}\nerror during command execution: {reason}\n")
        return runner.Completed(argv, 1, "", stderr, 0.1)

    def _verify(self, argv: list[str], args: list[str]) -> runner.Completed:
        flags, (ref,) = _parse(args, VERIFY_FLAGS - {"--type"})
        keys = self.signatures.get(self._digest(ref), set())
        if not keys:
            return self._failed(argv, "no signatures found")
        if flags["--key"] not in keys:
            return self._failed(argv, "no matching signatures: invalid signature when validating "
                                      "ASN.1 encoded signature")
        payload = [{"critical": {"image": {"docker-manifest-digest": self._digest(ref)}}}]
        return runner.Completed(argv, 0, json.dumps(payload) + "\n", "Verification for ...\n", 0.1)

    def _verify_attestation(self, argv: list[str], args: list[str]) -> runner.Completed:
        flags, (ref,) = _parse(args, VERIFY_FLAGS)
        mine = [s for k, s in self.attestations.get(self._digest(ref), []) if k == flags["--key"]]
        if not mine:
            return self._failed(argv, "no matching attestations: ")
        want = PREDICATE_TYPES[flags["--type"]]
        typed = [s for s in mine if s["predicateType"] == want]
        if not typed:
            found = ", ".join(s["predicateType"] for s in mine)
            return self._failed(argv, f"none of the attestations matched the predicate type: "
                                      f"{flags['--type']}, found: {found}")
        lines = [json.dumps({"payloadType": "application/vnd.in-toto+json",
                             "payload": base64.b64encode(json.dumps(s).encode()).decode(),
                             "signatures": [{"keyid": "", "sig": "MEUCIQ..."}]}) for s in typed]
        return runner.Completed(argv, 0, "\n".join(lines) + "\n", "Verification for ...\n", 0.1)
