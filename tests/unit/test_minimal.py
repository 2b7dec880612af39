"""The minimal variant (issue 18): FROM scratch, the libraries the tree links and the tree
stage's very layer; no shell, so its smoke checks are Python and its labels are read from its
files through the engine's archive API."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from orchestrator import naming, render
from orchestrator.apt import sources
from orchestrator.config import loader, matrix
from orchestrator.config.matrix import Cell
from orchestrator.config.model import Loaded
from orchestrator.errors import ConfigError
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.registry import fingerprint
from orchestrator.smoke import app as smoke_app
from orchestrator.smoke import suite
from tests import require
from tests.require import require_tool
from tests.unit.helpers import REPO, TODAY, edit, line_of

MINIMAL = ("  dev: {size_budget_mb: 520}\n",
           "  dev: {size_budget_mb: 520}\n  minimal: {size_budget_mb: 60}\n")
NO_DEADSNAKES = ("exclude:\n", "exclude:\n  - {method: deadsnakes, variant: minimal}\n")
SCRIPT = REPO / "stages" / "minimal" / "minimal-rootfs.sh"


def _repo_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    for name in ("images.yaml", "images.lock"):
        shutil.copy2(REPO / name, tmp_path / name)
    cfg = tmp_path / "images.yaml"
    text = cfg.read_text()
    for old, new in edits:
        text = edit(text, old, new)
    cfg.write_text(text)
    return cfg


@pytest.fixture
def mini(tmp_path: Path) -> tuple[Loaded, lockfile.Lock]:
    loaded = loader.load(_repo_copy(tmp_path, MINIMAL, NO_DEADSNAKES), today=TODAY)
    return loaded, lockfile.read(loaded)


def _stage(text: str, name: str) -> str:
    m = re.search(rf"^FROM \S+ AS {re.escape(name)}\n((?:(?!FROM ).*\n)*)", text, re.MULTILINE)
    assert m, name
    return m.group(0)


# --------------------------------------------------------------------------- matrix, plan, tags


def test_a_third_variant_with_its_own_tags_and_budget(mini: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = mini
    p = plan.build(loaded, lock, today=TODAY)
    img = p.image("3.13-source-bookworm-minimal")
    version = lock.python("3.13").version
    assert (img.variant, img.target, img.size_budget_mb, img.has_shell) == (
        "minimal", "minimal-3.13-source", 60, False)
    assert img.tags == ("3.13-minimal", "3.13-minimal-bookworm", f"{version}-minimal-bookworm")
    assert img.build == p.image("3.13-source-bookworm-runtime").build  # the same compile
    assert img.depends_on is None  # FROM scratch: not built on the runtime stage
    assert not any(i.variant == "minimal" and i.method == "deadsnakes" for i in p.images)
    # every source and python-build cell has a minimal twin (13), deadsnakes ones do not
    assert p.table().splitlines()[-1].startswith("43 images (13 minimal), 25 CPython builds")
    assert len({b.id for b in p.builds}) == len(plan.build(loader.load(REPO / "images.yaml", today=TODAY),
                                                            lock, today=TODAY).builds)


def test_refused_for_deadsnakes_cells(tmp_path: Path) -> None:
    path = _repo_copy(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    err = info.value
    assert (err.key, err.line) == ("variants.minimal", line_of(path.read_text(), "minimal: {size"))
    assert err.problem.startswith("3.13-deadsnakes-noble-minimal: a minimal image is FROM scratch plus "
                                  "the CPython tree stage")
    assert err.fix.startswith("add exclude: [{method: deadsnakes, variant: minimal}]")


def test_needs_the_ca_bundle_and_tzdata_in_runtime_base(tmp_path: Path) -> None:
    path = _repo_copy(tmp_path, MINIMAL, NO_DEADSNAKES, (
        "      runtime: [ca-certificates, netbase, tzdata, libssl3, libsqlite3-0",
        "      runtime: [ca-certificates, netbase, libssl3, libsqlite3-0"))
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert str(info.value) == (
        f"{path}:{line_of(path.read_text(), 'runtime: [ca-certificates, netbase, libssl3')}: "
        "distros.bookworm.packages.runtime: bookworm has minimal images, which copy the CA bundle "
        "and the time zone database from runtime-base, but it does not install tzdata; add tzdata "
        "to distros.bookworm.packages.runtime")


# --------------------------------------------------------------------------- rendering


def test_the_minimal_stages(mini: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = mini
    files = render.render_all(loaded, lock)
    text = files[Path("bookworm/Dockerfile")].decode()
    root, image = _stage(text, "minimal-root-3.13-source"), _stage(text, "minimal-3.13-source")
    assert root.startswith("FROM runtime-base AS minimal-root-3.13-source\n")
    assert ("RUN --mount=type=bind,from=tree-3.13-source,source=/opt/org/python/3.13,"
            "target=/opt/org/python/3.13 \\\n"
            "    --mount=type=bind,source=minimal,target=/usr/src/minimal \\\n"
            "    bash /usr/src/minimal/minimal-rootfs.sh /minimal-root /opt/org/python/3.13 app \\\n"
            "      ca-certificates tzdata netbase\n") in root
    assert "apt-get" not in root  # 3.13 needs no library beyond runtime-base's
    assert "libnsl2" in _stage(text, "minimal-root-3.12-source")  # packages.runtime_for_python
    # FROM scratch, no RUN: the files, then the tree stage exactly as the runtime copies it
    assert image.startswith("FROM scratch AS minimal-3.13-source\n")
    copies = [line for line in image.splitlines() if line.startswith("COPY")]
    assert copies == ["COPY --link --from=minimal-root-3.13-source /minimal-root/ /",
                      "COPY --link --from=tree-3.13-source / /"]
    assert copies[1] in _stage(text, "runtime-3.13-source").splitlines()
    assert "\nRUN " not in image and "SHELL" not in image
    assert 'USER 10001:10001\nWORKDIR /home/app\nENTRYPOINT ["python3"]\n' in image
    assert 'PATH="/opt/org/python/3.13/bin:' in image and 'LANG="C.UTF-8"' in image
    assert 'org.org.base-image.variant="minimal"' in image
    assert 'org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"' in image
    bake = render.bake.bake(loaded, lock, matrix.expand(loaded.config))
    assert bake["target"]["3_13-source-bookworm-minimal"]["target"] == "minimal-3.13-source"


def test_the_script_ships_only_where_minimal_images_are_built(
        mini: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = mini
    files = render.render_all(loaded, lock)
    shipped = sorted(str(rel) for rel in files if rel.parts[1:2] == (naming.MINIMAL_DIR,))
    assert shipped == [f"{d}/minimal/minimal-rootfs.sh" for d in ("bookworm", "noble", "resolute", "trixie")]
    assert files[Path("bookworm/minimal/minimal-rootfs.sh")] == SCRIPT.read_bytes()
    # not beside the scripts every compile mounts: a file more there would rebuild them all
    assert not (REPO / "stages" / "scripts" / SCRIPT.name).exists()
    org = loader.load(REPO / "images.yaml", today=TODAY)
    assert not any(rel.parts[1:2] == (naming.MINIMAL_DIR,)
                   for rel in render.render_all(org, lockfile.read(org)))
    # render removes it again once minimal is gone (a file an earlier render wrote)
    render.write(loaded, files)
    script = loaded.output_dir / "bookworm" / "minimal" / "minimal-rootfs.sh"
    assert script.is_file()
    loaded.path.write_text(edit(edit(loaded.path.read_text(), MINIMAL[1], MINIMAL[0]),
                                NO_DEADSNAKES[1], NO_DEADSNAKES[0]))
    back = loader.load(loaded.path, today=TODAY)
    render.write(back, render.render_all(back, lock))
    assert not script.exists()
    assert render.check(back, render.render_all(back, lock)) == []


def test_the_fingerprint_closure_follows_run_mounts(mini: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = mini
    text = render.render_all(loaded, lock)[Path("bookworm/Dockerfile")].decode()
    closure = render.stage_closure(text, "minimal-3.13-source")
    for stage in ("base", "security-updates", "runtime-base", "minimal-root-3.13-source",
                  "tree-3.13-source", "prep-3.13-source", "python-3.13-source"):
        assert f" AS {stage}\n" in closure, stage
    assert " AS runtime-3.13-source\n" not in closure and " AS dev-3.13-source\n" not in closure
    mounted = render.stage_closure("FROM a AS x\nFROM b AS y\nRUN --mount=type=bind,from=x,target=/t true\n",
                                   "y")
    assert "AS x" in mounted


@pytest.mark.spawns("shellcheck")
def test_the_script_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck", require.DEV_EXTRA,
                              path=Path(sys.executable).with_name("shellcheck"))
    out = subprocess.run([shellcheck, "-x", str(SCRIPT)], capture_output=True, text=True, check=False,
                         timeout=120)
    assert out.returncode == 0, out.stdout


# --------------------------------------------------------------------------- smoke checks


def _minimal_img(mini: tuple[Loaded, lockfile.Lock], cell: str) -> plan.PlannedImage:
    loaded, lock = mini
    return plan.build(loaded, lock, today=TODAY).image(cell)


def test_smoke_checks_run_python_as_the_entrypoint(mini: tuple[Loaded, lockfile.Lock]) -> None:
    img = _minimal_img(mini, "3.13-source-bookworm-minimal")
    checks = suite.checks_for(img, uid=10001, prefix="/opt/org/python/3.13", tls_host="pypi.org")
    names = [c.name for c in checks]
    assert names == ["python-version", "stdlib-imports", "tls-verify", "pip-only-in-dev",
                     "startup-modules-frozen", "interpreter-link", "extensions-load",
                     "runs-as-non-root", "python-tree-read-only", "no-shell", "dpkg-status",
                     "utf-8", "venv", "components"]
    for c in checks:
        assert c.argv[0] in ("-c", "--version"), c.name  # arguments of ENTRYPOINT ["python3"]
        assert c.user is None, c.name
        if c.argv[0] == "-c":
            compile(c.argv[1], c.name, "exec")
    by = {c.name: c for c in checks}
    assert by["runs-as-non-root"].expect(0, "10001\n") is None
    assert by["runs-as-non-root"].expect(0, "0\n") is not None
    assert by["stdlib-imports"].argv[2:] == suite.STDLIB + ["readline", "curses"]  # the modules
    runtime = _minimal_img(mini, "3.13-source-bookworm-runtime")
    assert [c.argv[0] for c in suite.checks_for(runtime, uid=10001, prefix="/p", tls_host="x")
            if c.name == "stdlib-imports"] == ["python3"]


@pytest.mark.spawns("python")
def test_the_checks_pass_on_this_interpreter_where_they_can(tmp_path: Path) -> None:
    """The scripts are Python: the ones that do not need a minimal image run here."""
    cell = Cell("3.13", "source", "bookworm", "minimal")
    img = plan.PlannedImage(
        id=cell.id, distro="bookworm", python="3.13", version="3.13.15", method="source",
        variant="minimal", target=cell.target, bake_target="x", dockerfile="x", build="b", base="b",
        repository="r", tags=(), immutable_tag="t", immutable_revision="t", depends_on=None,
        size_budget_mb=60, python_eol_days=1, distro_eol_days=1)
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3").write_text("x")
    for path, mode in ((tree, 0o555), (tree / "bin", 0o555), (tree / "bin" / "python3", 0o444)):
        path.chmod(mode)
    checks = {c.name: c for c in suite.checks_for(img, uid=os.getuid(), prefix=str(tree), tls_host="x")}
    import sys
    for name in ("venv", "utf-8", "python-tree-read-only"):  # extensions-load: an image's only
        out = subprocess.run([sys.executable, *checks[name].argv], capture_output=True, text=True,
                             env={"PYTHONUTF8": "1", "PATH": os.environ["PATH"]}, check=False, timeout=60)
        if name == "python-tree-read-only" and os.getuid() == 0:
            assert out.returncode != 0  # root may write anything: the check does not pass as root
        else:
            assert out.returncode == 0, (name, out.stdout, out.stderr)
    tree.chmod(0o755)
    (tree / "bin").chmod(0o755)


def test_the_downstream_app_replaces_the_entrypoint() -> None:
    app = smoke_app.downstream_app("dev:1", "minimal:1", "/opt/org/python/3.13", minimal=True)
    last = app.split("FROM minimal:1\n", 1)[1]
    assert last.startswith("COPY --from=build /app/venv /app/venv\nENTRYPOINT [\"/app/venv/bin/python\"")
    assert "RUN" not in last and "CMD" not in last
    runtime = smoke_app.downstream_app("dev:1", "runtime:1", "/opt/org/python/3.13")
    assert "\nCMD [\"/app/venv/bin/python\"" in runtime and "ENTRYPOINT" not in runtime


# --------------------------------------------------------------------------- labels without a shell


def _root_archive(root: Path) -> bytes:
    """A tar of ``root`` named as `docker cp <container>:/ -` names it ("/", "/etc", ...)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(root, arcname="/", recursive=True)
    return buf.getvalue()


def _shell_contents(root: Path, prefix: str) -> tuple[str, int]:
    """read_contents' own tree hash and du, run on the host over the same files."""
    rel = prefix.lstrip("/")
    tree = subprocess.run(
        ["sh", "-ec", f"cd {root} && find {rel} \\( -type f -o -type l \\) ! -name '*.pyc' -print0 "
         "| LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"],
        capture_output=True, text=True, check=True, timeout=60).stdout.split()[0]
    du = subprocess.run(["du", "-sxb", str(root)], capture_output=True, text=True, check=True, timeout=60)
    return tree, int(du.stdout.split()[0])


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    p = root / "opt/org/python/3.13"
    (p / "bin").mkdir(parents=True)
    (p / "lib/python3.13/__pycache__").mkdir(parents=True)
    (p / "bin/python3.13").write_bytes(b"\x7fELF interpreter")
    (p / "bin/python3").symlink_to("python3.13")
    (p / "bin/python").symlink_to("python3")
    (p / "bin/dangling").symlink_to("nowhere")
    (p / "lib/python3.13/os.py").write_text("# os\n")
    (p / "lib/python3.13/__pycache__/os.cpython-313.pyc").write_bytes(b"bytecode")
    (p / "lib/python3.13/up").symlink_to("../../bin/python3")
    (p / "lib/python3.13/ünïcode.py").write_text("x = 1\n")
    os.link(p / "lib/python3.13/os.py", p / "lib/python3.13/os-hardlink.py")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u13\nDescription: x\n"
        " GNU C Library: Shared libraries\n\n"
        "Package: tzdata\nStatus: install ok installed\nVersion: 2025b-0+deb12u2\n\n"
        "Package: gone\nStatus: purge ok not-installed\nVersion: 1\n")
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    (root / "etc/apt/sources.list.d/e2e.list").write_text(
        "deb [trusted=yes] http://127.0.0.1:8700/apt-e2e ./\n")
    (root / "lib").symlink_to("usr/lib")
    return root


@pytest.mark.spawns("du", "sh")
def test_contents_from_the_archive_mean_what_the_shell_reads(rootfs: Path) -> None:
    c = fingerprint.contents_from_archive(_root_archive(rootfs), "/opt/org/python/3.13")
    tree, du = _shell_contents(rootfs, "/opt/org/python/3.13")
    assert c.tree_hash == tree  # the same hash a runtime image of the same tree carries
    # an absolute link is followed inside the image (the host's shell above cannot)
    absolute = rootfs / "opt/org/python/3.13/lib/python3.13/abs"
    absolute.symlink_to("/opt/org/python/3.13/lib/python3.13/os.py")
    again = fingerprint.contents_from_archive(_root_archive(rootfs), "/opt/org/python/3.13")
    absolute.unlink()
    (rootfs / "opt/org/python/3.13/lib/python3.13/abs").write_text("# os\n")
    assert again.tree_hash == _shell_contents(rootfs, "/opt/org/python/3.13")[0] != tree
    (rootfs / "opt/org/python/3.13/lib/python3.13/abs").unlink()
    assert c.packages == {"libc6": "2.36-9+deb12u13", "tzdata": "2025b-0+deb12u2"}
    # in the order the shell's dump reads them (sources.list, *.list, *.sources): equal labels
    assert [s.describe() for s in c.apt_sources] == [
        "http://127.0.0.1:8700/apt-e2e ./", "http://deb.debian.org/debian bookworm main",
        "http://deb.debian.org/debian bookworm-updates main"]
    assert c.apt_sources[0].trusted
    script = sources.DUMP_SCRIPT.replace("/etc/apt/", f"{rootfs}/etc/apt/")
    dumped = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                            timeout=60).stdout
    assert list(c.apt_sources) == sources.parse_dump(dumped)
    # du --apparent-size: files once (hard links too), link targets, directories (ext4: 4096)
    sizes, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(rootfs):
        sizes += fingerprint.DIR_BYTES
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            st = (Path(dirpath) / name).lstat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                sizes += st.st_size
    assert c.unpacked_bytes == sizes
    if all(Path(d).stat().st_size == fingerprint.DIR_BYTES for d, _, _ in os.walk(rootfs)):
        assert c.unpacked_bytes == du


def test_read_contents_without_shell_reads_the_root_through_the_archive_api(rootfs: Path) -> None:
    asked: list[tuple[str, str, str | None]] = []

    class Engine:
        def read_tree(self, image: str, path: str, platform: str | None = None) -> bytes:
            asked.append((image, path, platform))
            return _root_archive(rootfs)

    c = fingerprint.read_contents_without_shell(Engine(), "cand:latest", "/opt/org/python/3.13",  # type: ignore[arg-type]
                                            platform="linux/arm64")
    assert asked == [("cand:latest", "/", "linux/arm64")]
    assert c.packages_label() == "libc6=2.36-9+deb12u13 tzdata=2025b-0+deb12u2"
