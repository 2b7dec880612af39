"""verify: the signature, SBOM and provenance attestations of published images (cosign);
check-reproducible: two cold builds of an image, compared bit for bit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator import registry, settings
from orchestrator.cli.common import SubParsers, engine_for, load_config, load_plan
from orchestrator.errors import ExitCode, UsageError
from orchestrator.lock import lockfile
from orchestrator.planning import epoch
from orchestrator.release import reproduce
from orchestrator.release.progress import Progress
from orchestrator.release.state import state_dir, work_dir
from orchestrator.supplychain import signing, verify


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
    st = settings.get()
    cosign = signing.Cosign(_keys(args), st.child_env({}))
    results = [verify.verify_ref(cosign, ref, lambda host: registry.registry_for(host, st),
                                 provenance=not args.no_provenance) for ref in args.refs]
    for r in results:
        print(r.line())
    return 0 if all(r.ok for r in results) else int(ExitCode.FAILED)


def cmd_check_reproducible(args: argparse.Namespace) -> int:
    """Exit 0 when both builds of every selected image are identical, 1 when not."""
    if not args.only:
        raise UsageError("check-reproducible: --only is required (each image is built twice "
                         "from cold caches); e.g. --only 3.13-source-trixie-runtime")
    loaded, plan = load_plan(args)
    if not plan.images:
        raise UsageError(f"--only {' '.join(args.only)}: no image of {loaded.path} matches; "
                         "`orchestrator plan` lists the ids")
    st = settings.get()
    when = epoch.resolve(loaded, st)
    print(f"SOURCE_DATE_EPOCH={when.value} ({when.iso()}, {when.source})")
    net = args.network or loaded.config.build.network
    work = work_dir(loaded, st)
    # a line per image on stderr (k/n, its time, the elapsed total; GitLab sections in CI), and
    # on a terminal the live status; stdout is the report
    progress = Progress.for_command("check-reproducible", state_dir(work), st)
    checks = reproduce.check_images(
        engine_for(args, loaded), loaded, lockfile.read(loaded), plan, epoch=when,
        network=None if net == "default" else net, work=work,
        platforms=tuple(args.platform) if args.platform else None, keep=args.keep,
        progress=progress)
    progress.save()
    for c in checks:
        print(f"{c.image} (builds: {', '.join(f'{s:.0f} s' for s in c.seconds)}):")
        for line in c.comparison.lines():
            print(f"  {line}")
    if args.json:
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"source_date_epoch": when.value,
                                       "epoch_source": when.source,
                                       "images": [c.to_dict() for c in checks]}, indent=2) + "\n")
        except OSError as exc:
            raise UsageError(f"--json {out}: cannot write it ({exc.strerror})") from None
    return 0 if all(c.comparison.identical for c in checks) else int(ExitCode.FAILED)


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
    r = sub.add_parser("check-reproducible", parents=[common, sel],
                       help="build the selected images twice from cold caches into OCI "
                            "layouts (SOURCE_DATE_EPOCH, rewritten timestamps) and compare "
                            "them platform by platform, layer by layer, file by file")
    r.add_argument("--platform", action="append", metavar="OS/ARCH",
                   help="only this platform of the image (repeatable; default: all)")
    r.add_argument("--network", choices=["host", "default", "none"],
                   help="build network (default: build.network of images.yaml)")
    r.add_argument("--builder", help="buildx builder (default: build.builder)")
    r.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    r.add_argument("--keep", action="store_true",
                   help="keep the two OCI layouts of an identical pair (a differing pair's are "
                        "always kept, under ORCH_WORK_DIR/reproducible/)")
