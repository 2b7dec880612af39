"""hostkit/matrix.py: the mirror's releases and paths come from the e2e matrix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostkit import matrix
from hostkit.common import E2E_MATRIX, HostkitError
from tests.unit.helpers import TODAY, edit
from tests.unit.hostkit_fakes import MATRIX

KEY_313 = "7169605F62C751356D054A26A821E680E5FA6305"


def _plan(tmp_path: Path, *edits: tuple[str, str]) -> matrix.MirrorPlan:
    """The plan of the fixture matrix (3.11.2, 3.12 deadsnakes, 3.13.15) after ``edits``."""
    text = MATRIX.read_text()
    for old, new in edits:
        text = edit(text, old, new)
    path = tmp_path / "images.yaml"
    path.write_text(text)
    return matrix.load(path, TODAY)


def test_the_e2e_matrix_names_the_mirror_releases_and_paths() -> None:
    plan = matrix.load(E2E_MATRIX, TODAY)
    # 3.14.4 (source, and its free-threaded 3.14t: the same tarball) and 3.13.15 (python-build)
    # are pinned there; 3.12 is deadsnakes only (no tarball); 3.13.5 is the signed reference
    # release the e2e tests pin
    assert plan.versions == ("3.13.5", "3.13.15", "3.14.4")
    assert plan.reference == matrix.REFERENCE_RELEASE == "3.13.5"
    assert plan.python_dir == Path("ftp/python")
    assert plan.fingerprint("3.13.5") == KEY_313
    assert plan.fingerprint("3.14.4") is None  # Sigstore only (PEP 761): no .asc to verify
    assert plan.key_file(KEY_313) == Path(f"ftp/python/keys/{KEY_313}.asc")
    assert (plan.pyenv_version, plan.pyenv_file) == ("2.6.30", Path("pyenv/pyenv-2.6.30.tar.gz"))
    assert plan.tarballs("3.14.4") == ("Python-3.14.4.tar.xz", "Python-3.14.4.tgz")


def test_the_fixture_matrix_is_the_old_line_up() -> None:
    plan = matrix.load(MATRIX, TODAY)
    assert plan.versions == ("3.11.2", "3.13.5", "3.13.15")
    assert plan.tarballs("3.11.2") == ("Python-3.11.2.tar.xz", "Python-3.11.2.tgz")


def test_a_new_pin_is_mirrored_and_paths_follow_the_sources(tmp_path: Path) -> None:
    plan = _plan(tmp_path,
                 ('  - version: "3.13.15"\n', '  - version: "3.13.18"\n'),
                 ("python: http://127.0.0.1:8700/ftp/python/", "python: http://127.0.0.1:8700/cpython/"),
                 ("url: http://127.0.0.1:8700/pyenv/pyenv-{version}.tar.gz",
                  "url: http://127.0.0.1:8700/tools/pyenv-v{version}.tgz"))
    assert plan.versions == ("3.11.2", "3.13.5", "3.13.18")
    assert plan.python_dir == Path("cpython")
    assert plan.pyenv_file == Path("tools/pyenv-v2.6.30.tgz")


def test_a_deadsnakes_only_minor_needs_no_tarball(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ('  - version: "3.12"  ', '  - version: "3.12.3"'))
    assert plan.versions == ("3.11.2", "3.13.5", "3.13.15")


def test_a_compiled_minor_must_be_pinned(tmp_path: Path) -> None:
    with pytest.raises(HostkitError, match=r"images\.yaml: pythons: 3\.13 is built from a tarball but not "
                       r"pinned to a release; pin it \(e\.g\. \"3\.13\.N\"\) so the mirror knows"):
        _plan(tmp_path, ('  - version: "3.13.15"\n', '  - version: "3.13"\n'))
