"""Image sizes: on disk, compressed (as stored by the registry), layer overlap, Python tree.

- on disk: the bytes of every file in the image (``du -sxb /`` of its root filesystem in a
  throwaway container): the same meaning on the classic and the containerd image store,
  whose ``docker images`` size also counts the compressed blobs (orchestrator.registry.fingerprint reads
  sizes the same way). The minimal image has no shell to run ``du`` in: its filesystem is
  exported (``docker export`` of a created container) and unpacked in a throwaway container
  of the base image, where the same ``du -sxb`` measures it;
- compressed: each image is pushed to ``127.0.0.1:5000/bench/...`` and the manifest's
  config + layer sizes are summed (gzip, as ``docker push`` stores them);
- added over the base: the layers after the base image's own (checked by diff id);
- dev shares with runtime: runtime layers (by diff id) that are also dev's layers;
- minimal shares with runtime: its layers (the CPython tree's, by diff id) that runtime has,
  i.e. what pulling minimal after runtime does not download again;
- per layer: uncompressed size (engine history, aligned with the image config's history),
  compressed size and the instruction that made it, so a regression can be located;
- Python tree: ``du -sb`` of the prefix, bin, the stdlib's top entries, lib-dynload,
  site-packages and the bytecode shipped, measured inside a throwaway container.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from common import REGISTRY, inspect, log, run, run_retry
from images import BenchImage, Layout

from orchestrator.registry import Registry

TOP_ENTRIES = 15
NATIVE = "linux/amd64"  # what `docker run` / `docker image inspect` of an index show here


def push(local: str, repo: str, tag_name: str) -> str:
    remote = f"{REGISTRY}/{repo}:{tag_name}"
    run(["docker", "tag", local, remote])
    run_retry(["docker", "push", "--quiet", remote], timeout=1800)
    return remote


def _layer_sizes(ref: str, config_history: list[dict[str, Any]]) -> list[tuple[int, str]] | None:
    """(uncompressed bytes, created_by) per layer, oldest first; None if not alignable."""
    out_lines = run(["docker", "image", "history", "--human=false", "--no-trunc", "--format",
                     "{{.Size}}", ref]).split()
    hist = [int(x) for x in reversed(out_lines)]  # the engine lists newest first
    if len(hist) != len(config_history):
        return None
    out = []
    for entry, cfg in zip(hist, config_history, strict=True):
        if cfg.get("empty_layer"):
            continue
        out.append((entry, str(cfg.get("created_by", ""))))
    return out


def layers_of(img: BenchImage, registry: Registry, repo: str, tag_name: str,
              base_local: str = "") -> dict[str, Any]:
    info = inspect(img.ref)
    diff_ids: list[str] = list(info.get("RootFS", {}).get("Layers", []))
    found = registry.manifest(repo, tag_name)
    if found is None:
        raise RuntimeError(f"{REGISTRY}/{repo}:{tag_name} is not in the registry after the push")
    manifest = json.loads(found[0])
    ref, index_digest = tag_name, ""
    if "manifests" in manifest:  # amd64 + arm64 (containerd store): measure the native image
        platforms = registry.platform_manifests(repo, tag_name) or {}
        if NATIVE not in platforms:
            raise RuntimeError(f"{REGISTRY}/{repo}:{tag_name} has no {NATIVE} image "
                               f"({', '.join(platforms) or 'no platform'})")
        ref, index_digest = platforms[NATIVE], found[2]
        found = registry.manifest(repo, ref)
        if found is None:
            raise RuntimeError(f"{REGISTRY}/{repo}@{ref} is not in the registry")
        manifest = json.loads(found[0])
    mlayers = manifest.get("layers", [])
    if len(mlayers) != len(diff_ids):
        raise RuntimeError(f"{img.ref}: {len(diff_ids)} diff ids but {len(mlayers)} manifest layers")
    config = registry.image_config(repo, ref) or {}
    sizes = _layer_sizes(img.ref, list(config.get("history", [])))
    if sizes is not None and len(sizes) != len(diff_ids):
        sizes = None
    layers = []
    for i, (diff_id, ml) in enumerate(zip(diff_ids, mlayers, strict=True)):
        layers.append({
            "diff_id": diff_id, "digest": ml["digest"], "compressed": int(ml["size"]),
            "disk": sizes[i][0] if sizes else None,
            "created_by": sizes[i][1][:160] if sizes else "",
        })
    return {
        "ref": img.ref, "image_id": info["Id"], "pushed_as": f"{REGISTRY}/{repo}:{tag_name}",
        "manifest_digest": found[2], "index_digest": index_digest, "platform": NATIVE,
        "disk_bytes": exported_bytes(img.ref, base_local) if img.variant == "minimal"
        else unpacked_bytes(img.ref),
        "compressed_bytes": int(manifest["config"]["size"]) + sum(x["compressed"] for x in layers),
        "layers": layers,
    }


def unpacked_bytes(ref: str) -> int:
    """Apparent size of the image's root filesystem, as a container of it sees it."""
    out = run(["docker", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint",
               "/bin/sh", ref, "-c", "du -sxb /"])
    return int(out.split()[0])


def exported_bytes(ref: str, helper: str) -> int:
    """``du -sxb`` of an image without a shell: its exported root filesystem, unpacked in a
    throwaway container of ``helper`` (an image with sh, tar and du: the base image)."""
    container = run(["docker", "create", ref]).strip()
    export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
    try:
        out = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", "--user", "0",
                              "--entrypoint", "/bin/sh", helper, "-c",
                              "mkdir /x && tar -x -C /x && du -sxb /x"],
                             stdin=export.stdout, capture_output=True, text=True, timeout=600,
                             check=True).stdout
        if export.wait(timeout=60) != 0:
            raise RuntimeError(f"docker export of {ref} failed")
    finally:
        if export.stdout is not None:
            export.stdout.close()
        run(["docker", "rm", "-f", container], check=False)
    return int(out.split()[0])


def _sum(layers: list[dict[str, Any]], key: str) -> int | None:
    vals = [x[key] for x in layers]
    return None if any(v is None for v in vals) else sum(vals)


def over_base(entry: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    base_ids = [x["diff_id"] for x in base["layers"]]
    ids = [x["diff_id"] for x in entry["layers"]]
    prefix = ids[:len(base_ids)] == base_ids
    added = entry["layers"][len(base_ids):] if prefix else [
        x for x in entry["layers"] if x["diff_id"] not in set(base_ids)]
    return {
        "base_is_prefix": prefix,
        "added_layers": len(added),
        "added_disk_bytes": entry["disk_bytes"] - base["disk_bytes"] if prefix else _sum(added, "disk"),
        "added_compressed_bytes": sum(x["compressed"] for x in added),
    }


def overlap(runtime: dict[str, Any], dev: dict[str, Any]) -> dict[str, Any]:
    dev_ids = {x["diff_id"] for x in dev["layers"]}
    rt = runtime["layers"]
    shared = [x for x in rt if x["diff_id"] in dev_ids]
    shared_disk = _sum(shared, "disk")
    rt_disk = _sum(rt, "disk")
    return {
        "runtime_layers": len(rt),
        "shared_layers": len(shared),
        "shared_layers_pct": round(100.0 * len(shared) / len(rt), 1) if rt else 0.0,
        "runtime_is_prefix_of_dev": [x["diff_id"] for x in dev["layers"][:len(rt)]]
        == [x["diff_id"] for x in rt],
        "shared_disk_bytes": shared_disk,
        "shared_disk_pct": round(100.0 * shared_disk / rt_disk, 1) if shared_disk and rt_disk else None,
        "shared_compressed_bytes": sum(x["compressed"] for x in shared),
        "dev_only_compressed_bytes": dev["compressed_bytes"] - sum(x["compressed"] for x in shared),
    }


def minimal_overlap(runtime: dict[str, Any], minimal: dict[str, Any]) -> dict[str, Any]:
    """The minimal image's layers the runtime image has too (by diff id): the CPython tree."""
    rt_ids = {x["diff_id"] for x in runtime["layers"]}
    shared = [x for x in minimal["layers"] if x["diff_id"] in rt_ids]
    return {
        "minimal_layers": len(minimal["layers"]),
        "shared_layers": len(shared),
        "shared_compressed_bytes": sum(x["compressed"] for x in shared),
        "shared_disk_bytes": _sum(shared, "disk"),
        "minimal_only_compressed_bytes": minimal["compressed_bytes"]
        - sum(x["compressed"] for x in shared),
    }


def _breakdown_script(layout: Layout) -> str:
    q = json.dumps  # a JSON string is a valid double-quoted sh word for these plain paths
    lines = ["set -e", "size() { if [ -e \"$2\" ]; then echo \"$1 $(du -sb \"$2\" | cut -f1)\"; fi; }"]
    if layout.root:
        lines.append(f"size root {q(layout.root)}")
    lines += [
        f"size bin {q(layout.bin)}",
        f"size stdlib {q(layout.stdlib)}",
        f"size lib-dynload {q(layout.stdlib + '/lib-dynload')}",
        f"size site-packages {q(layout.site_packages)}",
        f"echo \"bytecode-stdlib $(find {q(layout.stdlib)} -path {q(layout.stdlib + '/site-packages')} "
        "-prune -o -name '*.pyc' -printf '%s\\n' | awk '{s+=$1} END {print s+0}')\"",
        f"echo \"bytecode-site-packages $(find {q(layout.site_packages)} -name '*.pyc' -printf '%s\\n' "
        "2>/dev/null | awk '{s+=$1} END {print s+0}')\"",
        f"echo \"pyc-files-stdlib $(find {q(layout.stdlib)} -path {q(layout.stdlib + '/site-packages')} "
        "-prune -o -name '*.pyc' -print | wc -l)\"",
        f"echo \"py-files-stdlib $(find {q(layout.stdlib)} -path {q(layout.stdlib + '/site-packages')} "
        "-prune -o -name '*.py' -print | wc -l)\"",
    ]
    if layout.libdir:
        lines.append(f"echo \"libpython $(find {q(layout.libdir)} -maxdepth 1 -name 'libpython*' -type f "
                     "-printf '%s\\n' | awk '{s+=$1} END {print s+0}')\"")
    lines.append(f"cd {q(layout.stdlib)} && du -sb -- * | sed 's/^/entry /'")
    return "\n".join(lines)


def breakdown(img: BenchImage) -> dict[str, Any]:
    assert img.layout is not None
    out = run(["docker", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "/bin/sh",
               img.ref, "-c", _breakdown_script(img.layout)], timeout=300)
    result: dict[str, Any] = {"layout": img.layout.__dict__}
    entries: list[tuple[str, int]] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        if parts[0] == "entry" and len(parts) >= 3:
            entries.append((" ".join(parts[2:]), int(parts[1])))
        elif parts[1].isdigit():
            result[parts[0]] = int(parts[1])
    entries.sort(key=lambda e: -e[1])
    top = entries[:TOP_ENTRIES]
    rest = entries[TOP_ENTRIES:]
    result["stdlib_top"] = [{"entry": n, "bytes": b} for n, b in top]
    if rest:
        result["stdlib_top"].append({"entry": f"(other {len(rest)} entries)",
                                     "bytes": sum(b for _, b in rest)})
    return result


def measure(images: dict[str, BenchImage], base_local: str, run_id: str) -> dict[str, Any]:
    registry = Registry(REGISTRY, attempts=6, backoff=2.0)
    per_image: dict[str, Any] = {}
    base_img = BenchImage("base", "base (debian:bookworm-slim)", base_local, "base", None)
    targets = {"base": base_img, **images}
    for key, img in targets.items():
        repo = "bench/base" if key == "base" else f"bench/{key}"
        tag_name = run_id
        log(f"size: pushing {img.ref} to {REGISTRY}/{repo}:{tag_name}")
        push(img.ref, repo, tag_name)
        per_image[key] = layers_of(img, registry, repo, tag_name, base_local)
        per_image[key]["label"] = img.label
    base = per_image["base"]
    for key, entry in per_image.items():
        if key != "base":
            entry["over_base"] = over_base(entry, base)
    overlaps, minimal = {}, {}
    for key, img in images.items():
        if img.kind == "ours" and img.variant == "runtime":
            dev_key, minimal_key = f"{img.profile}-dev", f"{img.profile}-minimal"
            if dev_key in per_image:
                overlaps[img.profile] = overlap(per_image[key], per_image[dev_key])
            if minimal_key in per_image:
                minimal[img.profile] = minimal_overlap(per_image[key], per_image[minimal_key])
    trees = {}
    for key, img in images.items():  # dev and minimal carry the runtime's very tree
        if img.layout is not None and not (img.kind == "ours" and img.variant in ("dev", "minimal")):
            log(f"size: Python tree breakdown of {img.ref}")
            trees[key] = breakdown(img)
    return {"images": per_image, "dev_runtime_overlap": overlaps, "minimal_runtime_overlap": minimal,
            "python_tree": trees}
