"""check-reproducible: the bit-for-bit comparison of two OCI layouts, and the command with
the fake engine (two cold exports, SOURCE_DATE_EPOCH passed, exit 1 on any difference)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from orchestrator import render, settings
from orchestrator.cli import supply_cmds
from orchestrator.config import loader as config
from orchestrator.config.loader import load
from orchestrator.errors import ExitCode, UsageError
from orchestrator.lock import lockfile
from orchestrator.planning import build_cache, epoch, plan
from orchestrator.registry import Registry
from orchestrator.release import build, session
from orchestrator.release.build import do_build
from orchestrator.release.report import Report
from orchestrator.release.state import Run
from orchestrator.supplychain import reproducible as repro
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.oci_layouts import Layer, write_layout
from tests.unit.helpers import FIXTURES, TODAY, run_cli

AMD, ARM = "linux/amd64", "linux/arm64"
BASE: Layer = {"etc": (None, 100), "etc/os-release": (b"ID=debian\n", 100)}
TREE: Layer = {"opt/python/bin/python3": (b"\x7fELF...", 1700000000),
               "opt/python/lib/os.py": (b"import abc\n", 1700000000)}


def _compare(tmp_path: Path, a: dict[str, list[Layer]], b: dict[str, list[Layer]], *,
             attestation: bool = True, gzip_mtime: int = 0, ordered: bool = True,
             nested: bool = True, desc_platform: bool = True) -> repro.Comparison:
    first = write_layout(tmp_path / "a.tar", a)
    second = write_layout(tmp_path / "b.tar", b, attestation=attestation, gzip_mtime=gzip_mtime,
                          ordered=ordered, nested=nested, desc_platform=desc_platform)
    with repro.Layout(first) as la, repro.Layout(second) as lb:
        return repro.compare(la, lb)


def test_the_same_files_give_the_same_digests_per_platform_attestations_left_out(
        tmp_path: Path) -> None:
    images = {AMD: [BASE, TREE], ARM: [BASE, TREE]}
    result = _compare(tmp_path, images, images, attestation=False)
    assert result.identical
    assert [(p.platform, p.layers, p.identical_layers) for p in result.platforms] == [
        (AMD, 2, 2), (ARM, 2, 2)]
    assert result.lines()[0].startswith("linux/amd64: identical: sha256:")


def test_a_single_platform_export_without_nesting_or_descriptor_platform_reads_the_config(
        tmp_path: Path) -> None:
    layout = write_layout(tmp_path / "one.tar", {ARM: [TREE]}, nested=False,
                          desc_platform=False, attestation=False)
    with repro.Layout(layout) as la:
        assert list(la.manifests()) == [ARM]
    result = _compare(tmp_path, {ARM: [TREE]}, {ARM: [TREE]}, nested=False, desc_platform=False)
    assert result.identical and [p.platform for p in result.platforms] == [ARM]


def test_a_file_time_the_export_did_not_clamp_is_named_with_its_layer_and_field(
        tmp_path: Path) -> None:
    later = {**TREE, "opt/python/lib/os.py": (b"import abc\n", 1700000999)}
    result = _compare(tmp_path, {AMD: [BASE, TREE]}, {AMD: [BASE, later]})
    assert not result.identical
    (p,) = result.platforms
    assert p.identical_layers == 1
    layer = [d for d in p.differences if d.where.startswith("layer")]
    assert [(d.where, d.item, d.field, d.first, d.second) for d in layer] == [
        ("layer 2/2", "opt/python/lib/os.py", "mtime", "1700000000", "1700000999")]
    config = [d for d in p.differences if d.where == "config"]
    assert [d.item for d in config] == ["rootfs.diff_ids[1]"]
    assert "not clamp" in layer[0].line()


def test_content_and_missing_files_and_config_values_are_reported(tmp_path: Path) -> None:
    changed: Layer = {"opt/python/bin/python3": (b"\x7fELF.!.", 1700000000),
               "opt/python/lib/extra.py": (b"", 1700000000)}
    first = write_layout(tmp_path / "a.tar", {AMD: [TREE]})
    second = write_layout(tmp_path / "b.tar", {AMD: [changed]},
                          config_extra={"created": "2026-12-02T01:00:00Z"})
    with repro.Layout(first) as la, repro.Layout(second) as lb:
        (p,) = repro.compare(la, lb).platforms
    found = {(d.item, d.field) for d in p.differences}
    assert ("opt/python/bin/python3", "content") in found
    assert ("opt/python/lib/extra.py", "missing") in found
    assert ("opt/python/lib/os.py", "missing") in found
    assert ("created", "value") in found



def _patched_elf(section: str, at: int = 8) -> tuple[bytes, bytes]:
    """A real ELF file (this host's `true`) and a copy with one byte of ``section`` changed."""
    true = shutil.which("true")
    assert true is not None
    body = Path(true).read_bytes()
    with Path(true).open("rb") as fh:
        found = ELFFile(fh).get_section_by_name(section)
        assert found is not None
        offset = found["sh_offset"]
    changed = bytearray(body)
    changed[offset + at] ^= 0xFF
    return body, bytes(changed)


def test_an_elf_file_that_differs_names_the_sections_that_differ(tmp_path: Path) -> None:
    """What a PGO build's tree shows (issue 16): the code differs, the rest of the file not."""
    body, changed = _patched_elf(".text")
    a: Layer = {"opt/python/bin/python3.13": (body, 1700000000)}
    b: Layer = {"opt/python/bin/python3.13": (changed, 1700000000)}
    (p,) = _compare(tmp_path, {AMD: [a]}, {AMD: [b]}).platforms
    layer = [(d.item, d.field, d.first) for d in p.differences if d.where.startswith("layer")]
    assert [(i, f) for i, f, _ in layer] == [("opt/python/bin/python3.13", "content"),
                                             ("opt/python/bin/python3.13", "elf-sections")]
    elf = next(d for d in p.differences if d.field == "elf-sections")
    assert elf.first == ".text"
    total = int(elf.second.split(" of ")[1].split()[0])
    assert total > 10 and elf.second == f"{total - 1} of {total} sections identical"
    assert "PGO" in elf.line()
    data, other = _patched_elf(".rodata")
    (q,) = _compare(tmp_path / "rodata", {AMD: [{"lib/x.so": (data, 1)}]},
                    {AMD: [{"lib/x.so": (other, 1)}]}).platforms
    assert [d.first for d in q.differences if d.field == "elf-sections"] == [".rodata"]



def test_an_elf_file_whose_build_id_alone_differs_points_at_the_debug_info(tmp_path: Path) -> None:
    """python-build's first check (issue 16): the per-run build directory was in the debug
    info strip removed, so only the build-id differed; the hint must not blame PGO."""
    body, changed = _patched_elf(".note.gnu.build-id", at=16)  # the id itself
    (p,) = _compare(tmp_path, {AMD: [{"bin/python3.11": (body, 1)}]},
                    {AMD: [{"bin/python3.11": (changed, 1)}]}).platforms
    (ids,) = [d for d in p.differences if d.field.startswith("elf-")]
    assert (ids.field, ids.first) == ("elf-ids", ".note.gnu.build-id")
    assert "debug info" in ids.line() and "PGO" not in ids.line()

@pytest.mark.parametrize("field", ["e_shoff", "sh_offset", "sh_size"])
def test_an_elf_file_with_a_corrupt_section_header_gives_no_sections(field: str) -> None:
    """Headers pointing far outside the file (pyelftools raises OverflowError, zlib.error, ...
    on such files): no section list, so the difference stays a plain content difference."""
    true = shutil.which("true")
    assert true is not None
    body = bytearray(Path(true).read_bytes())
    assert repro.elf_sections(bytes(body))  # the intact file parses
    with Path(true).open("rb") as fh:
        elf = ELFFile(fh)
        text = elf.get_section_by_name(".text")
        assert text is not None
        shoff, shentsize = elf["e_shoff"], elf["e_shentsize"]
        index = next(i for i, sec in enumerate(elf.iter_sections()) if sec.name == ".text")
    # ELF64: e_shoff at 0x28; in a section header sh_offset at 0x18, sh_size at 0x20
    where = {"e_shoff": 0x28, "sh_offset": shoff + index * shentsize + 0x18,
             "sh_size": shoff + index * shentsize + 0x20}[field]
    body[where:where + 8] = (2**63 - 1).to_bytes(8, "little")
    assert repro.elf_sections(bytes(body)) == ()


def test_a_file_that_only_starts_like_elf_is_a_plain_content_difference(tmp_path: Path) -> None:
    assert repro.elf_sections(b"\x7fELF...") == ()
    changed: Layer = {**TREE, "opt/python/bin/python3": (b"\x7fELF.!.", 1700000000)}
    (p,) = _compare(tmp_path, {AMD: [TREE]}, {AMD: [changed]}).platforms
    assert [(d.item, d.field) for d in p.differences if d.where.startswith("layer")] == [
        ("opt/python/bin/python3", "content")]

def test_same_tar_other_compression_is_a_compression_difference(tmp_path: Path) -> None:
    result = _compare(tmp_path, {AMD: [TREE]}, {AMD: [TREE]}, gzip_mtime=12345)
    (p,) = result.platforms
    assert [d.field for d in p.differences] == ["compression"]


def test_only_the_order_of_the_members_differs(tmp_path: Path) -> None:
    reordered = dict(reversed(list(TREE.items())))
    result = _compare(tmp_path, {AMD: [TREE]}, {AMD: [reordered]}, ordered=False)
    layer = [d for d in result.platforms[0].differences if d.where.startswith("layer")]
    assert [d.field for d in layer] == ["order"]


def test_a_platform_built_only_once_is_missing(tmp_path: Path) -> None:
    result = _compare(tmp_path, {AMD: [TREE], ARM: [TREE]}, {AMD: [TREE]})
    arm = result.platforms[1]
    assert (arm.platform, arm.identical, arm.differences[0].field) == (ARM, False, "missing")
    assert result.platforms[0].identical and not result.identical


def test_many_differences_in_a_layer_are_cut_and_counted(tmp_path: Path) -> None:
    many: Layer = {f"f{i:03}": (b"x", 1) for i in range(60)}
    later: Layer = {f"f{i:03}": (b"x", 2) for i in range(60)}
    first = write_layout(tmp_path / "a.tar", {AMD: [many]})
    second = write_layout(tmp_path / "b.tar", {AMD: [later]})
    with repro.Layout(first) as la, repro.Layout(second) as lb:
        (p,) = repro.compare(la, lb, max_files=10).platforms
    assert len([d for d in p.differences if d.field == "mtime"]) == 10
    assert p.truncated == 50
    assert "50 more differences" in repro.Comparison((p,)).lines()[-1]


def test_not_a_layout_and_a_corrupt_blob_are_layout_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"no tar here")
    with pytest.raises(repro.LayoutError, match="not a tar archive"):
        repro.Layout(tmp_path / "junk.tar")
    with tarfile.open(write_layout(tmp_path / "l.tar", {AMD: [TREE]})) as tar:
        # our own layout (regular files and directories only); extractall's filter= is 3.11.4+,
        # and Debian 12's python3 is 3.11.2 (issue 34)
        for member in tar.getmembers():
            assert member.isfile() or member.isdir(), member.name
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
        tar.extractall(tmp_path / "dir")
    blobs = sorted((tmp_path / "dir" / "blobs" / "sha256").iterdir())
    for blob in blobs:
        blob.write_bytes(blob.read_bytes() + b" ")
    with (repro.Layout(tmp_path / "dir") as layout,
          pytest.raises(repro.LayoutError, match="does not match its digest")):
        layout.manifests()


def test_json_differences_walks_dicts_and_lists() -> None:
    a = {"history": [{"created": "1"}, {"created": "2"}], "os": "linux"}
    b = {"history": [{"created": "1"}, {"created": "3"}], "arch": "arm64"}
    assert repro.json_differences(a, b) == [
        ("arch", "absent", "arm64"), ("history[1].created", "2", "3"), ("os", "linux", "absent")]


# ---- SOURCE_DATE_EPOCH -------------------------------------------------------------------

def test_source_date_epoch_from_the_environment_and_its_date() -> None:
    st = settings.Settings.from_environ({"SOURCE_DATE_EPOCH": "1764547200"})
    assert st.source_date_epoch == 1764547200
    assert st.today.isoformat() == "2025-12-01"
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH='-5' is not a Unix timestamp"):
        settings.Settings.from_environ({"SOURCE_DATE_EPOCH": "-5"})


@pytest.mark.spawns("git")
def test_without_the_variable_and_without_git_history_the_fix_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("GIT_DIR", raising=False)
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    loaded = load(str(tmp_path / "images.yaml"), TODAY)
    with pytest.raises(UsageError, match="export SOURCE_DATE_EPOCH"):
        epoch.resolve(loaded, settings.get())
    st = dataclasses.replace(settings.get(), source_date_epoch=42)
    assert epoch.resolve(loaded, st) == epoch.Epoch(42, "environment SOURCE_DATE_EPOCH")


# ---- the command ----------------------------------------------------------------------------

CELL = "3.13-source-bookworm-runtime"


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    code, _, err = run_cli(["render", "--config", str(tmp_path / "images.yaml")], capsys)
    assert code == 0, err
    settings.override(dataclasses.replace(settings.get(), source_date_epoch=1764547200,
                                          work_dir=tmp_path / "work"))
    return tmp_path / "images.yaml"


def _no_registry(host: str) -> Registry:
    raise AssertionError(f"check-reproducible talks to no registry ({host})")


def _with_engine(monkeypatch: pytest.MonkeyPatch, engine: FakeEngine) -> None:
    monkeypatch.setattr(supply_cmds, "engine_for", lambda args, loaded: engine)


def test_two_cold_builds_alike_exit_0_with_the_epoch_passed(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine(registry_for=_no_registry)
    _with_engine(monkeypatch, engine)
    out_json = project.parent / "repro.json"
    code, out, err = run_cli(["check-reproducible", "--config", str(project), "--only", CELL,
                              "--json", str(out_json)], capsys)
    assert code == 0, err
    assert len(engine.exports) == 2
    assert all(no_cache for _, _, no_cache in engine.exports)
    (_, args1, _), (_, args2, _) = engine.exports
    assert args1 == args2
    assert args1["SOURCE_DATE_EPOCH"] == "1764547200"
    assert args1["SECURITY_REFRESH"] == "reproducibility-check"
    assert "SOURCE_DATE_EPOCH=1764547200 (2025-12-01T00:00:00+00:00" in out
    assert f"{CELL} (builds:" in out and "  linux/amd64: identical: sha256:" in out
    report = json.loads(out_json.read_text())
    (image,) = report["images"]
    assert (image["image"], image["identical"], image["built_platforms"]) == (
        CELL, True, ["linux/amd64"])
    assert engine.export_labels[0]["org.opencontainers.image.vendor"]  # the release's labels
    assert not (project.parent / "work" / "reproducible" / CELL).exists()  # removed: identical


def test_a_difference_is_exit_1_naming_the_file_and_field(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def export(n: int, target: str, platforms: list[str]) -> dict[str, list[Layer]]:
        return {p: [BASE, {"etc/shadow": (b"app:!:%d:0:99999:7:::\n" % (20000 + n), 1)}]
                for p in platforms}

    engine = FakeEngine(registry_for=_no_registry, on_export=export)
    _with_engine(monkeypatch, engine)
    code, out, _ = run_cli(["check-reproducible", "--config", str(project), "--only", CELL],
                           capsys)
    assert code == ExitCode.FAILED
    assert "DIFFERENT" in out
    assert "etc/shadow: content" in out


def test_only_is_required_and_an_unknown_platform_is_refused(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _with_engine(monkeypatch, FakeEngine(registry_for=_no_registry))
    code, _, err = run_cli(["check-reproducible", "--config", str(project)], capsys)
    assert code == ExitCode.BAD_INPUT and "--only is required" in err
    code, _, err = run_cli(["check-reproducible", "--config", str(project), "--only", CELL,
                            "--platform", "linux/s390x"], capsys)
    assert code == ExitCode.BAD_INPUT and "--platform" in err and "Traceback" not in err


@pytest.mark.spawns("git")
def test_the_epoch_is_the_last_commit_of_the_lock_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    env = {"GIT_AUTHOR_DATE": "@1700000000 +0000", "GIT_COMMITTER_DATE": "@1700000000 +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for argv in (["init", "-q"], ["add", "images.lock"], ["commit", "-q", "-m", "lock"]):
        subprocess.run(["git", *argv], cwd=tmp_path, env={**os.environ, **env}, check=True, timeout=60)
    loaded = load(str(tmp_path / "images.yaml"), TODAY)
    found = epoch.resolve(loaded, settings.get())
    assert found.value == 1700000000 and found.source.startswith("last commit of images.lock")


def test_a_release_build_gets_the_epoch_as_a_build_arg(project: Path) -> None:
    engine = FakeEngine(registry_for=_no_registry)
    loaded = load(str(project), TODAY)
    run = session.start_run(loaded, "build", lambda: engine, settings=settings.get(),
                            only=[CELL], profile=None, shard=None,
                            cache=build_cache.DEFAULT_OPTIONS, network=None)
    assert run.source_date_epoch == 1764547200
    _, targets = build.bake_targets(loaded, run.lock)
    (img,) = run.plan.images
    args = build.build_args(run.config, run.plan.profile, img, targets[img.bake_target],
                            security_refresh="0", source_date_epoch=run.source_date_epoch)
    assert args["SOURCE_DATE_EPOCH"] == "1764547200" and args["PYTHON_PGO"] in ("", "1")
    unset = build.build_args(run.config, run.plan.profile, img, targets[img.bake_target],
                             security_refresh="0", source_date_epoch=None)
    assert "SOURCE_DATE_EPOCH" not in unset


# ---- release builds: layer times clamped whenever an epoch is known ------------------------

@pytest.mark.parametrize(("epoch", "setting", "rewrite"), [
    (1764547200, None, True),          # the default: on
    (None, None, False),               # no SOURCE_DATE_EPOCH (shallow clone): nothing to clamp to
    (1764547200, "false", False),      # build.rewrite_timestamps: false
], ids=["epoch", "no-epoch", "switched-off"])
def test_release_builds_rewrite_layer_times_when_an_epoch_is_known(
        tmp_path: Path, epoch: int | None, setting: str | None, rewrite: bool) -> None:
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    if setting is not None:
        cfg = tmp_path / "images.yaml"
        text = cfg.read_text()
        assert "\n  output_dir: out\n" in text
        cfg.write_text(text.replace("\n  output_dir: out\n",
                                    f"\n  output_dir: out\n  rewrite_timestamps: {setting}\n"))
    loaded = config.load(tmp_path / "images.yaml", today=TODAY)
    lock = lockfile.read(loaded)
    render.write(loaded, render.render_all(loaded, lock))
    def no_registry(host: str) -> Registry:
        raise AssertionError(f"the build phase asked for registry {host}")

    engine = FakeEngine(no_registry)
    the_plan = plan.build(loaded, lock, only=["3.13-source-bookworm-runtime"], today=TODAY)
    run = Run(loaded, lock, the_plan, Report("build", the_plan.profile, the_plan.date),
              tmp_path / "work", engine, source_date_epoch=epoch, settings=settings.get())
    do_build(run)
    assert engine.rewrites and all(flag is rewrite for _, flag in engine.rewrites)
