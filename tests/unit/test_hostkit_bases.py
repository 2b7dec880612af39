"""hostkit/bases.py and the suites of hostkit/matrix.py: provision-host.sh's step images asks
hostkit which suites are Debian or Ubuntu and what their bases are called (from the e2e
matrix), which architectures a suite's base has, and what to do with it (skip, push, index,
rebuild) from its recipe, its marker and the registry."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hostkit import bases, cli, matrix
from hostkit.bases import Action, BasePlan
from hostkit.common import E2E_MATRIX, HostkitError, Out
from hostkit.matrix import Suite
from tests.fakes.fake_registry import FakeRegistry
from tests.unit.helpers import TODAY, edit
from tests.unit.hostkit_fakes import MATRIX

BOOKWORM = Suite("bookworm", "debian", "bookworm-slim", "debian")
RESOLUTE = Suite("resolute", "ubuntu", "resolute", "ubuntu")
REGISTRY = "127.0.0.1:5000"
NOBLE_RECIPE = "4 amd64 pockets: noble noble-updates noble-security"


# ---------------------------------------------------------------- suites (matrix.py)


def test_the_e2e_matrix_names_each_suites_base_image_and_family() -> None:
    assert [s.line() for s in matrix.suites(E2E_MATRIX, TODAY).values()] == [
        "bookworm debian bookworm-slim debian", "trixie debian trixie-slim debian",
        "noble ubuntu noble ubuntu", "resolute ubuntu resolute ubuntu"]


def test_named_suites_keep_the_order_asked_for_and_name_what_is_missing() -> None:
    named = matrix.named_suites(MATRIX, ["noble", "bookworm"], TODAY)
    assert [s.name for s in named] == ["noble", "bookworm"]
    assert len(matrix.named_suites(MATRIX, [], TODAY)) == 4
    with pytest.raises(HostkitError, match=r"has no distro sid, buster \(ORCH_BASE_SUITES\); its "
                                           r"distros: bookworm, trixie, noble, resolute"):
        matrix.named_suites(MATRIX, ["bookworm", "sid", "buster"], TODAY)


def test_a_suite_is_named_by_its_image_not_by_its_family(tmp_path: Path) -> None:
    """A Debian suite whose image is not <suite>-slim: the matrix says what it is called."""
    path = tmp_path / "images.yaml"
    path.write_text(edit(MATRIX.read_text(), "image: debian:trixie-slim", "image: library/debian:trixie"))
    assert matrix.suites(path, TODAY)["trixie"] == Suite("trixie", "library/debian", "trixie", "debian")


@pytest.mark.parametrize("image", ["debian@sha256:" + "a" * 64, "ghcr.io/org/debian:trixie-slim", "debian"])
def test_an_image_provisioning_cannot_push_as_repo_tag_is_an_error(tmp_path: Path, image: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(edit(MATRIX.read_text(), "image: debian:trixie-slim", f"image: {image}"))
    with pytest.raises(HostkitError, match=r"distros: trixie: image .* is not repository:tag"):
        matrix.suites(path, TODAY)


# ---------------------------------------------------------------- architectures


def test_arm64_when_asked_for_without_asking_the_registry() -> None:
    def has_tag(repo: str, tag: str) -> bool:
        raise AssertionError("asked the registry")

    assert bases.wanted_arches(BOOKWORM, ["trixie", "bookworm"], has_tag) == ("amd64", "arm64")


def test_arm64_kept_when_an_earlier_run_pushed_it_never_narrowed() -> None:
    asked: list[tuple[str, str]] = []

    def has_tag(repo: str, tag: str) -> bool:
        asked.append((repo, tag))
        return tag == "bookworm-slim-arm64"

    assert bases.wanted_arches(BOOKWORM, [], has_tag) == ("amd64", "arm64")
    assert bases.wanted_arches(RESOLUTE, ["bookworm"], has_tag) == ("amd64",)
    assert asked == [("debian", "bookworm-slim-arm64"), ("ubuntu", "resolute-arm64")]


# ---------------------------------------------------------------- the recipe and the marker


def test_the_recipe_text_is_the_markers() -> None:
    assert bases.recipe("4", ["amd64", "arm64"], None) == "4 amd64 arm64"
    assert bases.recipe("4", ["amd64"], ["noble", "noble-updates", "noble-security"]) == NOBLE_RECIPE
    assert bases.recipe("4", ["amd64", "arm64"], ["resolute"]) == "4 amd64 arm64 pockets: resolute"
    with pytest.raises(HostkitError, match="expected some of amd64, arm64"):
        bases.recipe("4", ["amd64", "riscv64"], None)
    with pytest.raises(HostkitError, match="expected some of amd64, arm64"):
        bases.recipe("4", [], None)


def test_pockets_belong_to_ubuntu_suites_only() -> None:
    assert bases.pockets_for(RESOLUTE, "resolute resolute-updates") == ["resolute", "resolute-updates"]
    assert bases.pockets_for(BOOKWORM, None) is None
    with pytest.raises(HostkitError, match="resolute is an Ubuntu suite: its recipe names its pockets"):
        bases.pockets_for(RESOLUTE, None)
    with pytest.raises(HostkitError, match="bookworm is a debian suite: its recipe names no pockets"):
        bases.pockets_for(BOOKWORM, "bookworm")


def test_without_arches_is_the_sed_expression() -> None:
    """sed -E 's/ (amd64|arm64)//g': every blank-led architecture name, wherever it stands."""
    assert bases.without_arches("4 amd64 arm64") == "4"
    assert bases.without_arches("4 amd64 pockets: resolute") == "4 pockets: resolute"
    assert bases.without_arches("3 arm64 amd64 amd64") == "3"
    assert bases.without_arches("4 amd64x") == "4x"  # no word boundary in the sed either
    assert bases.without_arches("amd64 4") == "amd64 4"  # none before it: kept


def test_the_marker_is_read_as_cat_in_a_command_substitution(tmp_path: Path) -> None:
    marker = tmp_path / "bookworm.recipe"
    assert bases.read_marker(marker) == ""  # missing
    marker.write_text("4 amd64 arm64\n\n\n")
    assert bases.read_marker(marker) == "4 amd64 arm64"
    marker.write_text("4 amd64 arm64 \n")
    assert bases.read_marker(marker) == "4 amd64 arm64 "  # a blank is not a newline
    marker.unlink()
    marker.mkdir()
    assert bases.read_marker(marker) == ""  # cat fails: empty


# ---------------------------------------------------------------- the decision


def _decide(suite: Suite, wanted: str, marker: str, rootfs: Path,
            digest: str | None = "sha256:" + "1" * 64) -> tuple[BasePlan, int]:
    asked = []

    def index_digest() -> str | None:
        asked.append(1)
        return digest

    return bases.decide(suite, wanted, marker, index_digest, rootfs, REGISTRY), len(asked)


def test_skip_when_the_marker_is_current_and_the_index_is_there(tmp_path: Path) -> None:
    plan, asked = _decide(BOOKWORM, "4 amd64 arm64", "4 amd64 arm64", tmp_path)
    assert (plan, asked) == (BasePlan(Action.SKIP, "4 amd64 arm64", "sha256:" + "1" * 64), 1)
    assert plan.lines() == ["action skip", "recipe 4 amd64 arm64", "digest sha256:" + "1" * 64]


def test_push_again_when_the_marker_is_current_but_the_index_is_gone(tmp_path: Path) -> None:
    (tmp_path / "bookworm-amd64").mkdir()
    plan, asked = _decide(BOOKWORM, "4 amd64", "4 amd64", tmp_path, digest=None)
    assert (plan, asked) == (BasePlan(Action.PUSH, "4 amd64"), 1)  # nothing removed
    assert plan.lines() == ["action push", "recipe 4 amd64"]


@pytest.mark.parametrize(("marker", "wanted"), [
    ("4 amd64", "4 amd64 arm64"),  # more architectures
    ("4 amd64 arm64 pockets: resolute", "4 amd64 pockets: resolute"),  # fewer (Ubuntu's arm64 gone)
])
def test_a_new_index_only_when_only_the_architectures_changed(tmp_path: Path, marker: str,
                                                              wanted: str) -> None:
    (tmp_path / "resolute-amd64").mkdir()
    plan, asked = _decide(RESOLUTE, wanted, marker, tmp_path)
    assert (plan, asked) == (BasePlan(Action.INDEX, wanted), 0)  # the registry is not asked
    assert plan.lines() == ["action index", f"recipe {wanted}"]


@pytest.mark.parametrize(("marker", "wanted"), [
    ("3 amd64 arm64", "4 amd64 arm64"),  # a new BASE_RECIPE
    ("", "4 amd64 arm64"),  # no marker: a first run, or one that stopped half-way
    ("4 amd64 arm64 ", "4 amd64 arm64"),  # a stray blank is a different recipe
])
def test_rebuild_removes_every_rootfs_there_and_every_image(tmp_path: Path, marker: str, wanted: str) -> None:
    for name in ("bookworm", "bookworm-arm64", "bookworm-amd64.tmp", "trixie-amd64"):
        (tmp_path / name).mkdir()
    (tmp_path / "bookworm-amd64").write_text("a file, not a rootfs\n")
    plan, asked = _decide(BOOKWORM, wanted, marker, tmp_path)
    assert (plan.action, plan.recipe, asked) == (Action.REBUILD, wanted, 0)
    assert plan.lines()[2:] == [
        "rootfs bookworm", f"image {REGISTRY}/debian:bookworm-slim",
        f"image {REGISTRY}/debian:bookworm-slim-amd64",
        "rootfs bookworm-arm64", f"image {REGISTRY}/debian:bookworm-slim-arm64"]


def test_rebuild_when_the_pockets_changed(tmp_path: Path) -> None:
    """Ubuntu's -updates back in sync: the same architectures, other pockets - a new base."""
    (tmp_path / "resolute-amd64").mkdir()
    plan, _ = _decide(RESOLUTE, "4 amd64 pockets: resolute resolute-updates", "4 amd64 pockets: resolute",
                      tmp_path)
    assert plan.action == Action.REBUILD
    assert ("rootfs", "resolute-amd64") in plan.remove
    assert ("image", f"{REGISTRY}/ubuntu:resolute") in plan.remove


# ---------------------------------------------------------------- the commands


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setenv("ORCH_E2E_MATRIX", str(MATRIX))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    code = cli.main(argv, Out(out, err))
    return code, out.getvalue(), err.getvalue()


def test_suites_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _main(["suites", "noble", "bookworm"], monkeypatch) == (
        0, "noble ubuntu noble ubuntu\nbookworm debian bookworm-slim debian\n", "")
    code, out, err = _main(["suites", "bookworm", "sid"], monkeypatch)
    assert (code, out) == (3, "")
    assert err.startswith("[provision] ERROR: ") and "has no distro sid (ORCH_BASE_SUITES)" in err


def test_base_arches_command(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeRegistry() as reg:
        reg.put_image("ubuntu", "resolute-arm64", "x")
        monkeypatch.setenv("ORCH_REGISTRY", reg.address)
        code, out, err = _main(["base-arches", "--arm64", "bookworm trixie", "bookworm", "noble",
                                "resolute"], monkeypatch)
        # bookworm: asked for (the registry not asked about it); noble: neither; resolute: kept
        asked = [path for method, path in reg.requests]
    assert (code, out, err) == (0, "bookworm amd64 arm64\nnoble amd64\nresolute amd64 arm64\n", "")
    assert asked == ["/v2/ubuntu/manifests/noble-arm64", "/v2/ubuntu/manifests/resolute-arm64"]


def test_base_arches_when_the_registry_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_REGISTRY", "127.0.0.1:9")  # discard: nothing listens
    code, out, err = _main(["base-arches", "noble"], monkeypatch)
    assert (code, out) == (4, "")
    assert err == ("[provision] ERROR: registry 127.0.0.1:9 (ORCH_REGISTRY) did not answer for "
                   "ubuntu:noble-arm64\n")


def test_base_state_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "noble-amd64").mkdir(parents=True)
    marker = rootfs / "noble.recipe"
    marker.write_text(NOBLE_RECIPE + "\n")
    args = ["base-state", "noble", "--recipe-version", "4", "--arches", "amd64",
            "--pockets", "noble noble-updates noble-security", "--marker", str(marker)]
    with FakeRegistry() as reg:
        digest = reg.put_image("ubuntu", "noble", "x")
        monkeypatch.setenv("ORCH_REGISTRY", reg.address)
        skip = _main(args, monkeypatch)
        marker.write_text("4 amd64 pockets: noble\n")
        rebuild = _main(args, monkeypatch)
    assert skip == (0, f"action skip\nrecipe {NOBLE_RECIPE}\ndigest {digest}\n", "")
    assert rebuild == (0, f"action rebuild\nrecipe {NOBLE_RECIPE}\nimage {reg.address}/ubuntu:noble\n"
                          f"rootfs noble-amd64\nimage {reg.address}/ubuntu:noble-amd64\n"
                          f"image {reg.address}/ubuntu:noble-arm64\n", "")


def test_base_state_refuses_a_recipe_without_the_ubuntu_pockets(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    code, out, err = _main(["base-state", "noble", "--recipe-version", "4", "--arches", "amd64",
                            "--marker", str(tmp_path / "noble.recipe")], monkeypatch)
    assert (code, out) == (3, "")
    assert err == ("[provision] ERROR: noble is an Ubuntu suite: its recipe names its pockets "
                   "(--pockets)\n")
