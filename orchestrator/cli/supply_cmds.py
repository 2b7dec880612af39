"""verify: the signature, SBOM and provenance attestations of published images (cosign)."""

from __future__ import annotations

import argparse

from orchestrator import registry as registry_mod
from orchestrator import signing, verify
from orchestrator.cli.common import SubParsers, load_config
from orchestrator.errors import ExitCode, UsageError


def _keys(args: argparse.Namespace) -> signing.Keys:
    if args.key:
        return signing.keys_from_option(args.key, tlog=args.tlog)
    loaded = load_config(args)
    if loaded.config.signing is None:
        raise UsageError(f"{loaded.path}: no signing: section to take the public key from; pass "
                         "--key cosign.pub (or env://VAR, a KMS URI) or add signing: to it")
    return signing.keys_for(loaded.config.signing, loaded.root, str(loaded.path))


def cmd_verify(args: argparse.Namespace) -> int:
    """One line per reference; exit 1 when any does not verify."""
    cosign = signing.Cosign(_keys(args))
    results = [verify.verify_ref(cosign, ref, registry_mod.registry_for,
                                 provenance=not args.no_provenance) for ref in args.refs]
    for r in results:
        print(r.line())
    return 0 if all(r.ok for r in results) else int(ExitCode.FAILED)


def add_parsers(sub: SubParsers, common: argparse.ArgumentParser,
                sel: argparse.ArgumentParser) -> None:
    p = sub.add_parser("verify", parents=[common],
                       help="check the cosign signature, SBOM and provenance attestations of "
                            "published images (tags or digests)")
    p.add_argument("refs", nargs="+", metavar="REF",
                   help="registry/repository:tag or registry/repository@sha256:...")
    p.add_argument("--key", metavar="PUBLIC_KEY",
                   help="public key file, env://VAR or KMS URI (default: signing.public_key of "
                        "--config; with --key no images.yaml is read)")
    p.add_argument("--tlog", action="store_true",
                   help="with --key: the signatures are in a Rekor transparency log (default: "
                        "none is needed, as signing.tlog: false)")
    p.add_argument("--no-provenance", action="store_true",
                   help="do not require the provenance attestation")
