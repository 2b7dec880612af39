"""naming owns every name: the templates render its stage names, the plan's targets and build
ids are its names, the BuildKit log parser and the build phase read them back with it."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from orchestrator import naming, render, settings
from orchestrator.config import loader
from orchestrator.config.axes import METHODS
from orchestrator.config.model import Loaded
from orchestrator.engine import BuildFailed, BuildLog, failed_stage
from orchestrator.lock import lockfile
from orchestrator.naming import BuildStages, Stage
from orchestrator.planning import plan
from orchestrator.registry import Registry
from orchestrator.release.build import do_build
from orchestrator.release.report import Report, Status
from orchestrator.release.state import Run
from tests.fakes.fake_engine import FakeEngine
from tests.unit.helpers import FIXTURES, REPO, TODAY

ARCH_NAMES = tuple(a.name for a in plan.ARCHES.values())
FROM_LINE = re.compile(r"^FROM (?:--platform=\S+ )?(\S+)(?: AS (\S+))?$", re.MULTILINE)
COPY_FROM = re.compile(r"--from=(\S+)")
CONFIGS = {"repo": REPO / "images.yaml", "features": FIXTURES / "features" / "images.yaml"}


def _examples() -> list[Stage]:
    """A stage of every kind, for every method and architecture the config allows."""
    out: list[Stage] = []
    for kind in naming.STAGE_KINDS:
        if kind in naming.DISTRO_STAGE_KINDS:
            out.append(Stage(kind))
        elif kind == "build-deps-cross":
            out += [Stage(kind, arch=a) for a in ARCH_NAMES]
        elif kind == "python-cross":
            out += [Stage(kind, "3.13", m, a) for m in METHODS for a in ARCH_NAMES]
        elif kind == "python-feed":
            out += [Stage(kind, "3.13", m, t, b)
                    for m in METHODS for t in ARCH_NAMES for b in ARCH_NAMES]
        else:
            out += [Stage(kind, "3.13", m) for m in METHODS]
    return out


def test_every_stage_name_parses_back_to_the_stage_it_names() -> None:
    examples = _examples()
    names = [s.name for s in examples]
    assert len(names) == len(set(names)), "two stages share a name"
    for stage in examples:
        assert naming.parse_stage(stage.name) == stage, stage


@pytest.mark.parametrize("name", ["labelled-amd64", "python-x", "runtime-3.13", "builder", ""])
def test_names_naming_does_not_give_do_not_parse(name: str) -> None:
    assert naming.parse_stage(name) is None


def test_the_shared_stage_names_are_stages_of_their_own_kind() -> None:
    names = {getattr(naming.DISTRO_STAGES, f.name) for f in fields(naming.DistroStages)}
    assert names == set(naming.DISTRO_STAGE_KINDS)
    for kind in naming.DISTRO_STAGE_KINDS:
        assert naming.parse_stage(kind) == Stage(kind)
    assert naming.DISTRO_STAGES.build_deps_cross("arm64") == "build-deps-cross-arm64"


def test_build_stages_of_a_method_with_a_dash() -> None:
    s = BuildStages("3.13", "python-build")
    assert (s.compile, s.cross("arm64"), s.feed("amd64", "arm64"), s.prep, s.image("dev")) == (
        "python-3.13-python-build", "python-3.13-python-build-cross-arm64",
        "python-3.13-python-build-amd64-to-arm64", "prep-3.13-python-build", "dev-3.13-python-build")
    assert naming.parse_stage(s.feed("${BUILDARCH}", "${TARGETARCH}")) == Stage(
        "python-feed", "3.13", "python-build", "${TARGETARCH}", "${BUILDARCH}")
    assert (s.image("minimal"), s.minimal_root) == ("minimal-3.13-python-build",
                                                     "minimal-root-3.13-python-build")
    with pytest.raises(ValueError, match="no image stage"):
        s.image("distroless")


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request: pytest.FixtureRequest) -> tuple[Loaded, plan.Plan, dict[Path, bytes]]:
    loaded = loader.load(CONFIGS[request.param], today=TODAY)
    lock = lockfile.read(loaded)
    return loaded, plan.build(loaded, lock, today=TODAY), render.render_all(loaded, lock)


def _dockerfiles(files: dict[Path, bytes]) -> dict[str, str]:
    return {str(rel.parent): data.decode() for rel, data in files.items()
            if rel.name == naming.DOCKERFILE}


def test_every_stage_a_template_renders_is_one_naming_gives(
        rendered: tuple[Loaded, plan.Plan, dict[Path, bytes]]) -> None:
    _, _, files = rendered
    for distro, text in _dockerfiles(files).items():
        declared = {m.group(2) for m in FROM_LINE.finditer(text)}
        assert None not in declared, f"{distro}: a FROM without AS"
        for name in declared:
            parsed = naming.parse_stage(name)
            assert parsed is not None and parsed.name == name, f"{distro}: stage {name}"
        # what a stage is built on: another stage (by a name naming gives) or an image
        used = {m.group(1) for m in FROM_LINE.finditer(text)} | set(COPY_FROM.findall(text))
        for ref in used:
            if ref == "scratch" or "/" in ref or ":" in ref:
                continue
            assert naming.parse_stage(ref) is not None, f"{distro}: {ref} is no stage naming gives"
            if "${" not in ref:
                assert ref in declared, f"{distro}: {ref} is used but not declared"


def test_the_plan_names_the_stages_and_builds_the_dockerfiles_have(
        rendered: tuple[Loaded, plan.Plan, dict[Path, bytes]]) -> None:
    loaded, the_plan, files = rendered
    dockerfiles = _dockerfiles(files)
    compiled: set[str] = set()
    for distro, text in dockerfiles.items():
        compiled |= {naming.stage_id(distro, m.group(2)) for m in FROM_LINE.finditer(text)
                     if naming.is_compile_stage(m.group(2))}
    assert compiled == {b.id for b in the_plan.builds}
    bake = json.loads(files[Path(naming.BAKE_FILE)])
    for img in the_plan.images:
        assert f" AS {img.target}\n" in dockerfiles[naming.context_dir(img.distro)]
        target = bake["target"][img.bake_target]
        assert target["target"] == img.target
        assert Path(loaded.config.build.output_dir, target["context"], target["dockerfile"]) \
            == Path(img.dockerfile)
        if img.build:  # a compiled image is taken down with its build
            assert naming.failure_keys(img.distro, img.python, img.method)["build"] == img.build


def test_the_labels_in_the_orchestrators_namespace_are_the_keys_naming_gives(
        rendered: tuple[Loaded, plan.Plan, dict[Path, bytes]]) -> None:
    loaded, _, files = rendered
    keys = naming.label_keys(loaded.config.publish.org)
    known = {getattr(keys, f.name) for f in fields(keys) if f.name != "namespace"}
    text = "\n".join(_dockerfiles(files).values())
    used = set(re.findall(rf"{re.escape(keys.namespace)}\.[a-z-]+", text))
    for target in json.loads(files[Path(naming.BAKE_FILE)])["target"].values():
        used |= {k for k in target["labels"] if k.startswith(keys.namespace + ".")}
    assert used and used <= known


def test_label_keys_spell_their_field_with_dashes() -> None:
    keys = naming.label_keys("acme")
    assert keys.namespace == "org.acme.base-image"
    assert (keys.python_tree, keys.apt_sources, keys.fingerprint) == (
        "org.acme.base-image.python-tree", "org.acme.base-image.apt-sources",
        "org.acme.base-image.fingerprint")


@pytest.mark.parametrize(("stage", "scope"), [
    (None, "distro"),
    ("base", "distro"), ("build-base", "distro"), ("security-updates", "distro"),
    ("runtime-base", "distro"), ("build-deps", "distro"), ("build-deps-cross-arm64", "distro"),
    ("deadsnakes-key", "build"),
    ("python-3.13-source", "build"), ("python-3.13-python-build", "build"),
    ("python-3.13-source-cross-arm64", "build"), ("python-3.13-source-amd64-to-arm64", "build"),
    ("prep-3.13-source", "build"), ("tree-3.13-source", "build"), ("devtree-3.13-source", "build"),
    ("runtime-3.13-source", "runtime"), ("runtime-3.12-deadsnakes", "runtime"),
    ("dev-3.13-source", None), ("labelled-amd64", None), ("something-else", None),
])
def test_what_a_failed_stage_takes_down(stage: str | None, scope: str | None) -> None:
    assert naming.failure_scope(stage) == scope


def _log(stage: str, platform: str = "") -> str:
    where = f"{platform} " if platform else ""
    return (f"#7 [{where}build-deps 1/1] RUN apt-get update\n#7 DONE 2.0s\n"
            f"#11 [{where}{stage} 2/2] RUN mkdir -p /usr/src/python && ./configure --prefix=/x\n"
            "#11 ERROR: process did not complete successfully: exit code: 2\n")


@pytest.mark.parametrize("platform", ["", "linux/arm64"])
def test_a_failing_stage_in_a_buildkit_log_comes_back_as_its_name_and_scope(
        tmp_path: Path, platform: str) -> None:
    stages = BuildStages("3.13", "python-build")
    for name, scope in [(stages.compile, "build"), (stages.cross("arm64"), "build"),
                        (stages.runtime, "runtime"), (naming.build_deps_cross("arm64"), "distro")]:
        log = tmp_path / "build.log"
        log.write_text(_log(name, platform))
        assert failed_stage(log) == name
        assert naming.failure_scope(failed_stage(log)) == scope


def test_a_cross_compile_knows_its_native_compile() -> None:
    assert naming.native_build_id("bookworm/python-3.13-python-build-cross-arm64") \
        == "bookworm/python-3.13-python-build"
    assert naming.native_build_id("bookworm/python-3.13-source") is None
    assert naming.native_build_id("bookworm/prep-3.13-source") is None


def test_the_compiles_a_build_log_reports_are_the_plans_build_ids() -> None:
    loaded = loader.load(CONFIGS["repo"], today=TODAY)
    the_plan = plan.build(loaded, lockfile.read(loaded), today=TODAY)
    for build in the_plan.builds:
        distro, stage = build.id.split("/", 1)
        blog = BuildLog()
        for line in (f"#3 [linux/arm64 {stage} 2/2] RUN cd /usr/src/python && ./configure",
                     "#3 DONE 300.0s"):
            blog.feed(line)
        assert [naming.stage_id(distro, s) for s in blog.compiled_stages()] == [build.id]


# ---- the build phase: a failed stage aborts exactly the images that need it ------------------

def _no_registry(host: str) -> Registry:
    raise AssertionError(f"the build phase asked for registry {host}")


def _build_run(tmp_path: Path, fail: dict[str, str]) -> Run:
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    loaded = loader.load(tmp_path / "images.yaml", today=TODAY)
    lock = lockfile.read(loaded)
    render.write(loaded, render.render_all(loaded, lock))
    def on_build(target: str, log_path: Path) -> None:
        if target in fail:  # the log names the stage that failed
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(_log(fail[target]))
            raise BuildFailed("exit code: 2", log_path)

    engine = FakeEngine(_no_registry, on_build=on_build)
    the_plan = plan.build(loaded, lock, only=["*-bookworm-*"], today=TODAY)
    run = Run(loaded, lock, the_plan, Report("build", the_plan.profile, the_plan.date),
              tmp_path / "work", engine, settings=settings.get())
    do_build(run)
    return run


def _aborted(run: Run) -> set[str]:
    return {c.id for c in run.report.cells.values() if c.status is Status.ABORTED}


@pytest.mark.parametrize(("stage", "aborted"), [
    # a shared stage: every image of the distro still to build (3.13 python-build came first)
    ("build-deps", {"3.13-source-bookworm-dev", "3.13-source-bookworm-minimal",
                    *(f"{m}-{v}" for m in ("3.14-python-build-bookworm", "3.14-source-bookworm",
                                           "3.14t-python-build-bookworm", "3.14t-source-bookworm")
                      for v in ("runtime", "dev")),
                    "3.14-source-bookworm-minimal", "3.14t-source-bookworm-minimal"}),
    # the compile: the images of that build only (the free-threaded one is another build)
    ("python-3.13-source", {"3.13-source-bookworm-dev", "3.13-source-bookworm-minimal"}),
    ("prep-3.13-source", {"3.13-source-bookworm-dev", "3.13-source-bookworm-minimal"}),
    # the runtime stage: its dev image (minimal is FROM scratch, never FROM it)
    ("runtime-3.13-source", {"3.13-source-bookworm-dev"}),
])
def test_a_failed_stage_aborts_the_images_that_need_it(
        tmp_path: Path, stage: str, aborted: set[str]) -> None:
    run = _build_run(tmp_path, {"runtime-3.13-source": stage})
    failed = run.report.cell("3.13-source-bookworm-runtime")
    assert failed.status is Status.FAILED and f"stage {stage} failed" in failed.message
    assert _aborted(run) == aborted
    for cell in aborted:
        assert run.report.cell(cell).message.startswith("not attempted: 3.13-source-bookworm-runtime: ")


def test_a_failed_dev_stage_takes_down_nothing_else(tmp_path: Path) -> None:
    run = _build_run(tmp_path, {"dev-3.13-source": "dev-3.13-source"})
    assert run.report.cell("3.13-source-bookworm-dev").status is Status.FAILED
    assert _aborted(run) == set()


@pytest.mark.parametrize("stage", ["minimal-root-3.13-source", "minimal-3.13-source"])
def test_a_failed_minimal_stage_takes_down_only_its_image(tmp_path: Path, stage: str) -> None:
    run = _build_run(tmp_path, {"minimal-3.13-source": stage})
    assert run.report.cell("3.13-source-bookworm-minimal").status is Status.FAILED
    assert _aborted(run) == set()
