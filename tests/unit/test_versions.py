"""add-python / retire-python (orchestrator/versions/, orchestrator/cli/python_cmds.py),
lock --upgrade and EOL awareness.

No network: CPython releases come from a fake python.org (``FakePythonOrg``) handed to the
real ``lock_sources.PythonOrgIndex`` as its ``fetch``. Golden files live in tests/golden/versions/;
their input is a snapshot of the repo's images.yaml/images.lock (images.yaml, images.lock
there), so other edits to the org matrix do not break them. Regenerate with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_versions.py``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from orchestrator import cli, log, registry, versions
from orchestrator.cli import python_cmds
from orchestrator.config import eol, loader
from orchestrator.config.model import Loaded, minor_of
from orchestrator.errors import ConfigError, ExitCode, SourceError, UsageError
from orchestrator.lock import lockfile, sources
from orchestrator.lock.lockfile import Lock
from orchestrator.lock.sources import PythonOrgIndex
from orchestrator.planning import plan
from tests.unit.helpers import REPO, TODAY, edit, run_cli

GOLDEN = REPO / "tests" / "golden" / "versions"
BASE = "https://www.python.org/ftp/python/"  # sources.python of the snapshot
PYENV_URL = "https://github.com/pyenv/pyenv/archive/refs/tags/v2.6.30.tar.gz"  # sources.pyenv
KEYS = "https://keys.openpgp.org/vks/v1/by-fingerprint/{fingerprint}"
KEY_BYTES = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nfake\n-----END PGP PUBLIC KEY BLOCK-----\n"

# folder -> files in it, like python.org: 3.16.0/ only has a pre-release.
RELEASES: dict[str, list[str]] = {
    "3.10.20": ["Python-3.10.20.tar.xz", "Python-3.10.20.tar.xz.asc"],
    "3.11.2": ["Python-3.11.2.tgz"],
    "3.11.15": ["Python-3.11.15.tar.xz", "Python-3.11.15.tar.xz.asc"],
    "3.12.13": ["Python-3.12.13.tar.xz", "Python-3.12.13.tar.xz.asc"],
    "3.13.13": ["Python-3.13.13.tar.xz", "Python-3.13.13.tar.xz.asc"],
    "3.13.15": ["Python-3.13.15.tar.xz", "Python-3.13.15.tar.xz.asc"],
    "3.14.4": ["Python-3.14.4.tar.xz"],
    "3.15.0": ["Python-3.15.0.tar.xz", "Python-3.15.0.tgz"],
    "3.16.0": ["Python-3.16.0a1.tar.xz"],
}


def tarball(name: str) -> bytes:
    return f"fake {name}\n".encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakePythonOrg:
    """A ``fetch`` serving a python.org-like tree (directory listings as http.server does)."""

    def __init__(self, base: str = BASE, releases: dict[str, list[str]] | None = None) -> None:
        self.base = base
        self.releases = RELEASES if releases is None else releases
        self.requests: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.requests.append(url)
        if url == self.base:
            return self._listing([f"{v}/" for v in self.releases])
        for v, files in self.releases.items():
            folder = f"{self.base}{v}/"
            if url == folder:
                return self._listing(files)
            if url.startswith(folder) and url[len(folder):] in files:
                return tarball(url[len(folder):])
        if url.startswith("https://keys.openpgp.org/"):
            return KEY_BYTES
        raise SourceError(f"cannot fetch {url}: HTTP Error 404: Not Found")

    @staticmethod
    def _listing(names: list[str]) -> bytes:
        return "\n".join(f'<li><a href="{n}">{n}</a></li>' for n in names).encode()


def fake_index_for(fake: FakePythonOrg) -> versions.IndexFor:
    return lambda cfg: PythonOrgIndex(cfg.sources.python, cfg.sources.python_keys, fake)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the snapshot: images.yaml, images.lock and its rendered generated/."""
    shutil.copy(GOLDEN / "images.yaml", tmp_path / "images.yaml")
    shutil.copy(GOLDEN / "images.lock", tmp_path / "images.lock")
    loaded = loader.load(tmp_path / "images.yaml", TODAY)
    from orchestrator import render

    render.write(loaded, render.render_all(loaded, lockfile.read(loaded)))
    return tmp_path / "images.yaml"


@pytest.fixture(autouse=True)
def _log_to_this_tests_stderr() -> None:
    """cli.main binds structlog to the sys.stderr of its time (a capsys buffer, closed later)."""
    log.configure("console")


@pytest.fixture
def fake() -> FakePythonOrg:
    return FakePythonOrg()


@pytest.fixture
def cli_fake(monkeypatch: pytest.MonkeyPatch, fake: FakePythonOrg) -> FakePythonOrg:
    """In-process CLI calls resolve CPython from the fake python.org."""
    monkeypatch.setattr(python_cmds, "_index_for", lambda args: fake_index_for(fake))
    return fake


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    import difflib

    diff = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


SNAPSHOT = (GOLDEN / "images.yaml").read_text(encoding="utf-8") if (GOLDEN / "images.yaml").exists() else ""


# ====================================================================== text edits (pure)


def test_snapshot_is_still_a_valid_config() -> None:
    loaded = loader.validate_data(loader.parse_yaml(SNAPSHOT, "images.yaml")[0], Path("images.yaml"), TODAY)
    assert [p.version for p in loaded.config.pythons] == ["3.12", "3.13", "3.14"]


def test_retire_3_12_golden() -> None:
    new, notes = versions.retire_python_text(SNAPSHOT, "3.12")
    golden("images.retire-3.12.yaml", new)
    assert notes == ['pythons -= "3.12"',
                     'exclude -= {distro: noble, python: "3.12", method: deadsnakes}']
    removed, added = changed_lines(SNAPSHOT, new)
    assert added == []
    assert removed == ['  - version: "3.12"', "exclude:",
                       '  - {distro: noble, python: "3.12", method: deadsnakes}   # noble ships 3.12 itself']


def test_retire_3_13_removes_the_include_rule_naming_it() -> None:
    new, notes = versions.retire_python_text(SNAPSHOT, "3.13")
    golden("images.retire-3.13.yaml", new)
    assert notes == ['pythons -= "3.13"',
                     'include -= {distro: bookworm, python: "3.13", method: python-build}']
    removed, added = changed_lines(SNAPSHOT, new)
    assert added == []
    assert len(removed) == 3 and removed[1].startswith("include:")


def test_retire_drops_the_minors_short_tag_default_and_an_emptied_defaults_key() -> None:
    text = SNAPSHOT.replace("  default_method: source\n", "  default_method: source\n  defaults:\n"
                            '    "3.12": {distro: noble}   # 3.12-runtime from noble\n'
                            '    "3.13": {distro: bookworm, method: python-build}\n', 1)
    assert text != SNAPSHOT
    once, notes = versions.retire_python_text(text, "3.12")
    assert notes[-1] == 'tags.defaults -= "3.12"'
    assert '"3.12": {distro: noble}' not in once and '    "3.13": {distro: bookworm' in once
    twice, notes = versions.retire_python_text(once, "3.13")
    assert notes[-1] == 'tags.defaults -= "3.13"'
    assert "defaults:" not in twice
    assert changed_lines(once, twice)[1] == []


@pytest.mark.parametrize("minor", ["3.12", "3.14"])
def test_retire_then_add_gives_the_original_bytes(minor: str) -> None:
    retired, _ = versions.retire_python_text(SNAPSHOT, minor)
    back, notes = versions.add_python_text(retired, minor)
    assert back == SNAPSHOT
    if minor == "3.12":  # noble ships 3.12 and uses deadsnakes: the exclude rule comes back
        assert notes[1].startswith('exclude += {distro: noble, python: "3.12", method: deadsnakes}')


def test_retire_3_12_then_add_3_15_golden() -> None:
    retired, _ = versions.retire_python_text(SNAPSHOT, "3.12")
    new, notes = versions.add_python_text(retired, "3.15")
    golden("images.retire-3.12.add-3.15.yaml", new)
    assert notes == ['pythons += "3.15"']
    removed, added = changed_lines(retired, new)
    assert (removed, added) == ([], ['  - version: "3.15"'])
    assert new.index('"3.14"') < new.index('"3.15"')  # appended in version order


def test_add_pinned_goes_first_in_version_order_golden() -> None:
    text = edit(SNAPSHOT, "max_pythons: 3 ", "max_pythons: 4 ")
    new, _ = versions.add_python_text(text, "3.11.2")
    golden("images.max4.add-3.11.2.yaml", new)
    assert changed_lines(text, new) == ([], ['  - version: "3.11.2"'])
    assert new.index('"3.11.2"') < new.index('- version: "3.12"')


def test_live_repo_images_yaml_round_trips() -> None:
    """Every Python of the live org matrix: retire + add restores the file byte for byte,
    unless an include rule names it (add-python never invents include rules)."""
    text = (REPO / "images.yaml").read_text(encoding="utf-8")
    cfg = loader.load(REPO / "images.yaml", TODAY).config
    checked = 0
    for p in cfg.pythons:
        minor = minor_of(p.version)
        if p.configure_opts or len(cfg.pythons) == 1 or any(r.python == minor for r in cfg.include):
            continue
        retired, _ = versions.retire_python_text(text, minor)
        assert versions.add_python_text(retired, p.version)[0] == text, minor
        checked += 1
    assert checked >= 1


def test_ruamel_would_reflow_this_file() -> None:
    """Why versions/yamledit.py edits text: a ruamel.yaml round trip is not byte-identical here."""
    import io

    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    out = io.StringIO()
    y.dump(y.load(SNAPSHOT), out)
    assert out.getvalue() != SNAPSHOT


BLOCK = """\
schema: x
pythons:   # keep me
  # a comment about 3.12
  - version: '3.12'
    configure_opts: [--with-lto,
                     --enable-optimizations]   # multi-line
  # 3.13 is the default
  - version: '3.13'  # trailing
max_pythons: 3
"""


def test_block_items_keep_quote_style_comments_and_multiline_entries() -> None:
    new = versions.insert_python_text(BLOCK, "3.14")
    assert new == BLOCK.replace("max_pythons", "  - version: '3.14'\nmax_pythons")
    retired, notes = versions.retire_python_text(BLOCK, "3.12")
    assert notes == ['pythons -= "3.12"']
    assert retired == BLOCK.replace(
        "  - version: '3.12'\n    configure_opts: [--with-lto,\n"
        "                     --enable-optimizations]   # multi-line\n", "")
    # between two items: after the previous item, before the comment that belongs to the next
    assert versions.insert_python_text(BLOCK, "3.12.1") == BLOCK.replace(
        "  # 3.13", "  - version: '3.12.1'\n  # 3.13")
    # first: above the comments over the first item, below the key
    assert versions.insert_python_text(retired, "3.12.1") == retired.replace(
        "  # a comment", "  - version: '3.12.1'\n  # a comment")


def test_flow_styles() -> None:
    flow_items = "pythons:\n- {version: \"3.12\"}\n- {version: \"3.14\"}\nexclude: []\n"
    assert versions.insert_python_text(flow_items, "3.13") == (
        "pythons:\n- {version: \"3.12\"}\n- {version: \"3.13\"}\n- {version: \"3.14\"}\nexclude: []\n")
    flow_seq = 'pythons: [{version: "3.12"}, {version: "3.14"}]  # c\n'
    assert versions.insert_python_text(flow_seq, "3.13") == (
        'pythons: [{version: "3.12"}, {version: "3.13"}, {version: "3.14"}]  # c\n')
    assert versions.insert_python_text(flow_seq, "3.15") == (
        'pythons: [{version: "3.12"}, {version: "3.14"}, {version: "3.15"}]  # c\n')
    assert versions.insert_python_text(flow_seq, "3.11") == (
        'pythons: [{version: "3.11"}, {version: "3.12"}, {version: "3.14"}]  # c\n')
    assert versions.retire_python_text(flow_seq, "3.12")[0] == 'pythons: [{version: "3.14"}]  # c\n'
    assert versions.retire_python_text(flow_seq, "3.14")[0] == 'pythons: [{version: "3.12"}]  # c\n'
    rules = ('pythons: [{version: "3.12"}, {version: "3.14"}]\n'
             'exclude: [{python: "3.12"}, {distro: x}, {python: "3.12", method: source}]\n'
             "include:\n  - {distro: x, python: \"3.12\", method: source}\nz: 1\n")
    new, notes = versions.retire_python_text(rules, "3.12")
    assert new == 'pythons: [{version: "3.14"}]\nexclude: [{distro: x}]\nz: 1\n'
    assert notes == ['pythons -= "3.12"', 'include -= {distro: x, python: "3.12", method: source}',
                     'exclude -= {python: "3.12"}', 'exclude -= {python: "3.12", method: source}']


def test_unsigned_reason_in_block_flow_and_crlf_layouts() -> None:
    reason = "no .asc: key expired"
    block = 'pythons:\n  - version: "3.12"\nz: 1\n'
    assert versions.insert_python_text(block, "3.13", unsigned=reason) == (
        'pythons:\n  - version: "3.12"\n  - version: "3.13"\n    unsigned: "no .asc: key expired"\nz: 1\n')
    flow = 'pythons: [{version: "3.12"}]\n'
    assert versions.insert_python_text(flow, "3.13", unsigned=reason) == (
        'pythons: [{version: "3.12"}, {version: "3.13", unsigned: "no .asc: key expired"}]\n')
    crlf = 'pythons:\r\n    - version: "3.12"\r\n'
    assert versions.insert_python_text(crlf, "3.11", unsigned=reason) == (
        'pythons:\r\n    - version: "3.11"\r\n      unsigned: "no .asc: key expired"\r\n'
        '    - version: "3.12"\r\n')
    for text in (block, flow, crlf):
        data = yaml.safe_load(versions.insert_python_text(text, "3.13", unsigned='a "b"\n#c'))
        assert {"version": "3.13", "unsigned": 'a "b"\n#c'} in data["pythons"]


def test_crlf_and_missing_final_newline() -> None:
    crlf = 'pythons:\r\n  - version: "3.12"\r\n  - version: "3.13"\r\nz: 1\r\n'
    assert versions.insert_python_text(crlf, "3.14") == crlf.replace("z: 1", '  - version: "3.14"\r\nz: 1')
    assert versions.retire_python_text(crlf, "3.12")[0] == 'pythons:\r\n  - version: "3.13"\r\nz: 1\r\n'
    bare = 'pythons:\n  - version: "3.12"'
    assert versions.insert_python_text(bare, "3.13") == bare + '\n  - version: "3.13"'


def test_exclude_rule_added_where_there_is_none() -> None:
    # retire 3.12 dropped the exclude: block: it comes back after include:
    retired, _ = versions.retire_python_text(SNAPSHOT, "3.12")
    assert "\nexclude:" not in retired
    new, _ = versions.add_python_text(retired, "3.12")
    assert new == SNAPSHOT
    # no include: either -> after max_pythons
    no_include = versions.retire_python_text(retired, "3.13")[0]
    new, _ = versions.add_python_text(no_include, "3.12")
    assert ('max_pythons: 3                  # add-python refuses a fourth; retire one first\n'
            'exclude:\n  - {distro: noble, python: "3.12", method: deadsnakes}   '
            "# noble ships 3.12 itself\n\nvariants:") in new
    # an empty flow list
    empty_flow = retired.replace("\nvariants:", "exclude: []   # none\n\nvariants:")
    new, _ = versions.add_python_text(empty_flow, "3.12")
    assert 'exclude: [{distro: noble, python: "3.12", method: deadsnakes}]   # none\n' in new
    loader.validate_data(loader.parse_yaml(new, "x")[0], Path("images.yaml"), TODAY)


def test_unusual_layout_is_refused_not_mangled() -> None:
    odd = "pythons:\n  -\n    version: '3.12'\n  - version: '3.13'\n"
    with pytest.raises(UsageError, match=r"not laid out as '  - \.\.\.' on its own line"):
        versions.retire_python_text(odd, "3.12")


def test_retire_text_refusals() -> None:
    with pytest.raises(UsageError, match=r"^Python 3.9 is not in images.yaml$"):
        versions.retire_python_text(SNAPSHOT, "3.9")
    with pytest.raises(UsageError, match="is the only Python"):
        versions.retire_python_text('pythons:\n  - version: "3.12"\n', "3.12")


# ====================================================================== add-python


def test_add_python_writes_yaml_lock_generated_and_prints_the_plan_diff(
    repo_copy: Path, cli_fake: FakePythonOrg, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo_copy.parent
    code, out, err = run_cli(["retire-python", "3.12", "--config", str(repo_copy)], capsys)
    assert code == 0, err
    assert (root / "images.yaml").read_text() == (GOLDEN / "images.retire-3.12.yaml").read_text()
    code, out, err = run_cli(["add-python", "3.15", "--config", str(repo_copy)], capsys)
    assert code == 0, err
    assert (root / "images.yaml").read_text() == (GOLDEN / "images.retire-3.12.add-3.15.yaml").read_text()
    golden("images.retire-3.12.add-3.15.lock", (root / "images.lock").read_text())
    lock = yaml.safe_load((root / "images.lock").read_text())
    assert lock["pythons"]["3.15"] == {
        "version": "3.15.0",
        "url": f"{BASE}3.15.0/Python-3.15.0.tar.xz",  # .tar.xz preferred over .tgz
        "sha256": sha(tarball("Python-3.15.0.tar.xz")),
        "resolved_from": "python.org layout",
    }
    assert f"{BASE}3.15.0/Python-3.15.0.tar.xz" in cli_fake.requests
    assert (root / "generated" / "bookworm" / "Dockerfile").read_text().count("3.15.0") > 0
    bake = (root / "generated" / "docker-bake.json").read_text()
    assert "3_15-source-bookworm-runtime" in bake and "3_12-" not in bake
    # the generated files are exactly what `render` produces: render --check is clean
    code, _out2, err2 = run_cli(["render", "--check", "--config", str(repo_copy)], capsys)
    assert code == 0, err2
    lines = out.splitlines()
    assert lines[0] == "add-python 3.15:"
    assert f"  {repo_copy}: pythons += \"3.15\"" in lines
    assert (f"  {root / 'images.lock'}: python 3.15: (none) -> 3.15.0 "
            f"({sha(tarball('Python-3.15.0.tar.xz'))[:12]})") in lines
    assert "    signature  none (Python 3.15 releases are signed with Sigstore only, no .asc)" in lines
    assert "+  - version: \"3.15\"" in lines  # the images.yaml diff
    assert "plan: +8 image(s), -0 image(s); moving tags +16, -0" in lines
    assert ("+ 3.15-source-bookworm-runtime 3.15.0 3.15-runtime, 3.15-runtime-bookworm, "
            "3.15.0-runtime-bookworm, 3.15.0.<date>-runtime-bookworm") in [" ".join(x.split()) for x in lines]
    assert any(line.startswith("  + 3.15-deadsnakes-noble-dev ") for line in lines)
    assert "NOT deleted" not in out


def test_add_signed_release_locks_signature_and_key(
    repo_copy: Path, fake: FakePythonOrg, tmp_path: Path
) -> None:
    retired, _ = versions.retire_python_text(repo_copy.read_text(), "3.12")
    repo_copy.write_text(retired)
    p = versions.propose_add(repo_copy, "3.12", fake_index_for(fake), TODAY)
    assert p.python is not None and p.python.version == "3.12.13"
    assert p.python.signature_url == f"{BASE}3.12.13/Python-3.12.13.tar.xz.asc"
    key = eol.PYTHON_SIGNING_KEY["3.12"]
    assert p.python.signing_key == lockfile.SigningKey(
        cast(str, key), KEYS.format(fingerprint=key), sha(KEY_BYTES))
    assert p.new_text == SNAPSHOT  # the exclude rule for noble came back as well
    report = versions.report(p, None)
    assert f"signature  {BASE}3.12.13/Python-3.12.13.tar.xz.asc (key {key})" in report
    assert "dry run: nothing written" in report


def test_add_pinned_version_and_tgz_only_release(repo_copy: Path, fake: FakePythonOrg) -> None:
    text = edit(repo_copy.read_text(), "max_pythons: 3 ", "max_pythons: 4 ")
    repo_copy.write_text(text)
    # 3.11 releases are PGP-signed: without its .asc at the source, 3.11.2 is not added
    with pytest.raises(ConfigError, match=r"images\.lock: pythons\.3\.11: 3\.11\.2 is locked "
                       r"without its OpenPGP signature .*pythons\[0\]\.unsigned: "):
        versions.propose_add(repo_copy, "3.11.2", fake_index_for(fake), TODAY)
    # ... unless the platform team says why (add-python --unsigned): written into the entry
    p = versions.propose_add(repo_copy, "3.11.2", fake_index_for(fake), TODAY,
                             unsigned='mirror has no .asc: "x"')
    golden_text = (GOLDEN / "images.max4.add-3.11.2.yaml").read_text()
    assert p.new_text == golden_text.replace(
        '  - version: "3.11.2"\n',
        '  - version: "3.11.2"\n    unsigned: "mirror has no .asc: \\"x\\""\n')
    assert p.loaded.config.pythons[0].unsigned == 'mirror has no .asc: "x"'
    assert p.python is not None and p.python.signature_url is None
    fake.releases = {**RELEASES, "3.11.2": ["Python-3.11.2.tgz", "Python-3.11.2.tgz.asc"]}
    p = versions.propose_add(repo_copy, "3.11.2", fake_index_for(fake), TODAY)
    assert p.new_text == golden_text
    key = eol.PYTHON_SIGNING_KEY["3.11"] or ""
    assert p.python == lockfile.PythonLock(
        "3.11.2", f"{BASE}3.11.2/Python-3.11.2.tgz", sha(tarball("Python-3.11.2.tgz")),
        f"{BASE}3.11.2/Python-3.11.2.tgz.asc",
        lockfile.SigningKey(key, KEYS.format(fingerprint=key), sha(KEY_BYTES)), "python.org layout")
    assert p.loaded.config.pythons[0].version == "3.11.2"
    assert p.lock.pythons["3.11"].version == "3.11.2"
    # unpinned: newest patch
    p = versions.propose_add(repo_copy, "3.11", fake_index_for(fake), TODAY)
    assert p.python is not None and p.python.version == "3.11.15"


def test_dry_run_writes_nothing(
    repo_copy: Path, cli_fake: FakePythonOrg, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(repo_copy.parent)
    code, out, err = run_cli(["retire-python", "3.13", "--dry-run", "--config", str(repo_copy)], capsys)
    assert code == 0, err
    assert snapshot(repo_copy.parent) == before
    assert "dry run: nothing written" in out
    assert "include -= {distro: bookworm, python: \"3.13\", method: python-build}" in out
    # 3.13's python-build cell was the only one: pyenv leaves the lock with it
    assert "pyenv: 2.6.30 (unlocked) -> (none)" in out


def test_retire_python_output_and_lock(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo_copy.parent
    code, out, err = run_cli(["retire-python", "3.13", "--config", str(repo_copy)], capsys)
    assert code == 0, err
    assert repo_copy.read_text() == (GOLDEN / "images.retire-3.13.yaml").read_text()
    lock = Lock.from_dict(yaml.safe_load((root / "images.lock").read_text()))
    assert sorted(lock.pythons) == ["3.12", "3.14"] and lock.pyenv is None
    assert lock.deadsnakes is not None  # noble still uses deadsnakes for 3.14
    assert "plan: +0 image(s), -10 image(s); moving tags +0, -20" in out
    assert ("  - 3.13-python-build-bookworm-runtime  3.13.13  3.13-runtime-bookworm-pybuild, "
            "3.13.13-runtime-bookworm-pybuild, 3.13.13.<date>-runtime-bookworm-pybuild") in out
    assert out.rstrip().endswith(
        "note: tags already published to registry.example.org/org/python are NOT deleted: they "
        "stay in the registry and keep working, but are no longer rebuilt or moved")
    assert "3.13" not in (root / "generated" / "docker-bake.json").read_text()
    code, _out, err = run_cli(["render", "--check", "--config", str(repo_copy)], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------- refusals


def _refusal(argv: list[str], capsys: pytest.CaptureFixture[str], root: Path) -> str:
    before = snapshot(root)
    code, out, err = run_cli(argv, capsys)
    assert code == ExitCode.BAD_INPUT, (out, err)
    assert out == ""
    assert snapshot(root) == before, "a refused command must not write anything"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_add_refusals(repo_copy: Path, cli_fake: FakePythonOrg, capsys: pytest.CaptureFixture[str]) -> None:
    root, cfg = repo_copy.parent, str(repo_copy)
    assert _refusal(["add-python", "3.13", "--config", cfg], capsys, root) == (
        f'error: Python 3.13 is already in {cfg} (pythons[1]: "3.13"); to move to a newer patch '
        "run `orchestrator lock --upgrade --only 3.13`")
    assert _refusal(["add-python", "3.13.15", "--config", cfg], capsys, root).startswith(
        f"error: Python 3.13 is already in {cfg}")
    assert _refusal(["add-python", "3.15", "--config", cfg], capsys, root) == (
        f"error: {cfg} already has 3 Pythons (3.12, 3.13, 3.14) and max_pythons is 3; "
        "retire the oldest first: orchestrator retire-python 3.12")
    assert _refusal(["add-python", "3.10", "--config", cfg], capsys, root) == (
        "error: Python 3.10 reached its end of life on 2026-10-31 (orchestrator/config/eol.py); "
        "refusing to add it")
    assert _refusal(["add-python", "3.9", "--config", cfg], capsys, root) == (
        "error: Python 3.9 reached its end of life on 2025-10-31 (orchestrator/config/eol.py); "
        "refusing to add it")
    for bad in ("4.0", "3", "3.13.x", "python3.13", "3.13.5rc1"):
        assert _refusal(["add-python", bad, "--config", cfg], capsys, root) == (
            f'error: add-python: "{bad}" is not a CPython version; give X.Y (newest patch) or '
            "X.Y.Z (pinned), e.g. 3.14 or 3.14.2")
    assert cli_fake.requests == [], "local refusals come before any network access"

    # make room, then ask for releases the source does not have
    repo_copy.write_text(edit(repo_copy.read_text(), "max_pythons: 3 ", "max_pythons: 5 "))
    assert _refusal(["add-python", "3.17", "--config", cfg], capsys, root) == (
        f"error: Python 3.17 is not released at {BASE} (sources.python): no 3.17.x release there")
    assert _refusal(["add-python", "3.15.7", "--config", cfg], capsys, root) == (
        f"error: Python 3.15.7 is not released at {BASE} (sources.python): newest 3.15.x there "
        "is 3.15.0")
    assert _refusal(["add-python", "3.16", "--config", cfg], capsys, root) == (
        f"error: Python 3.16 is not released at {BASE} (sources.python): no Python 3.16.x "
        f"source tarball found at {BASE}")
    assert _refusal(["add-python", "3.16.0", "--config", cfg], capsys, root) == (
        f"error: Python 3.16.0 is not released at {BASE} (sources.python): Python 3.16.0: "
        f"no source tarball in {BASE}3.16.0/")


def test_retire_refusals(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, cfg = repo_copy.parent, str(repo_copy)
    assert _refusal(["retire-python", "3.11", "--config", cfg], capsys, root) == (
        f"error: Python 3.11 is not in {cfg} (pythons: 3.12, 3.13, 3.14); nothing to retire")
    assert _refusal(["retire-python", "3.13.13", "--config", cfg], capsys, root) == (
        'error: retire-python: "3.13.13" is not a minor version; give X.Y, e.g. 3.13')
    for minor in ("3.12", "3.14"):
        assert run_cli(["retire-python", minor, "--config", cfg], capsys)[0] == 0
    assert _refusal(["retire-python", "3.13", "--config", cfg], capsys, root) == (
        f"error: Python 3.13 is the only Python in {cfg}; add its successor first "
        "(orchestrator add-python X.Y), then retire it")


def test_source_unreachable_is_not_a_refusal(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def down(url: str) -> bytes:
        raise SourceError(f"cannot fetch {url}: [Errno 111] Connection refused")

    monkeypatch.setattr(python_cmds, "_index_for", lambda args: fake_index_for(cast(Any, down)))
    repo_copy.write_text(edit(repo_copy.read_text(), "max_pythons: 3 ", "max_pythons: 4 "))
    before = snapshot(repo_copy.parent)
    code, _out, err = run_cli(["add-python", "3.15", "--config", str(repo_copy)], capsys)
    assert code == ExitCode.TOOL
    assert err == f"error: cannot fetch {BASE}: [Errno 111] Connection refused\n"
    assert snapshot(repo_copy.parent) == before


def test_nothing_is_written_when_rendering_fails(
    repo_copy: Path, cli_fake: FakePythonOrg, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from orchestrator import render

    def broken(*args: object) -> dict[Path, bytes]:
        raise ConfigError("stages", "template", "undefined value: x", "fix the stage template")

    monkeypatch.setattr(render, "render_all", broken)
    before = snapshot(repo_copy.parent)
    code, _out, err = run_cli(["retire-python", "3.12", "--config", str(repo_copy)], capsys)
    assert code == 2 and "undefined value" in err
    assert snapshot(repo_copy.parent) == before


def test_an_edit_that_breaks_validation_is_not_written(repo_copy: Path, fake: FakePythonOrg) -> None:
    text = edit(repo_copy.read_text(), "default_distro: bookworm ", "default_distro: nowhere ")
    repo_copy.write_text(text)
    with pytest.raises(ConfigError, match='unknown distro "nowhere"'):
        versions.propose_retire(repo_copy, "3.12", TODAY)
    assert repo_copy.read_text() == text


def test_retire_works_when_the_python_is_past_eol(repo_copy: Path) -> None:
    """Exactly when validation fails for an EOL Python, retire-python must still work."""
    after_eol = dt.date(2028, 11, 1)  # 3.12 EOL 2028-10-31
    text = repo_copy.read_text()
    # bookworm (2028-06-30) would be past its EOL too: move it so that only 3.12 fails
    text = edit(text, "    eol: 2028-06-30             # end of Debian LTS",
                "    eol: 2029-06-30             # end of Debian LTS")
    repo_copy.write_text(text)
    with pytest.raises(ConfigError, match=r"Python 3.12 reached its end of life on 2028-10-31; "
                                          r"remove it \(orchestrator retire-python 3.12\)"):
        loader.load(repo_copy, after_eol)
    p = versions.propose_retire(repo_copy, "3.12", after_eol)
    versions.apply(p)
    assert [e.version for e in loader.load(repo_copy, after_eol).config.pythons] == ["3.13", "3.14"]


# ====================================================================== CLI wiring


def test_register_adds_the_commands() -> None:
    p = cli.parser()
    args = p.parse_args(["add-python", "3.14", "--config", "x.yaml", "--dry-run"])
    assert (args.command, args.version, args.config, args.dry_run, args.from_pyenv) == (
        "add-python", "3.14", "x.yaml", True, None)
    args = p.parse_args(["retire-python", "3.11"])
    assert (args.command, args.minor, args.dry_run) == ("retire-python", "3.11", False)
    assert cli.COMMANDS["add-python"] is python_cmds.cmd_add_python
    assert cli.COMMANDS["retire-python"] is python_cmds.cmd_retire_python


def test_add_from_pyenv_definitions(repo_copy: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "pyenv"
    defs = root / "plugins/python-build/share/python-build"
    defs.mkdir(parents=True)
    url = f"{BASE}3.15.1/Python-3.15.1.tar.xz"
    (defs / "3.15.1").write_text(f'install_package "Python-3.15.1" "{url}#{"a" * 64}" standard\n')
    (defs / "3.15-dev").write_text("")
    repo_copy.write_text(edit(repo_copy.read_text(), "max_pythons: 3 ", "max_pythons: 5 "))
    code, out, err = run_cli(["add-python", "3.15", "--from-pyenv", str(root),
                              "--config", str(repo_copy)], capsys)
    assert code == 0, err
    assert f"    url        {url}" in out and f"    sha256     {'a' * 64}" in out
    code, out, err = run_cli(["add-python", "3.11", "--from-pyenv", str(root),
                              "--config", str(repo_copy)], capsys)
    assert (code, err) == (2, f"error: Python 3.11 is not released at {root} (pyenv definitions): "
                              "no 3.11.x release there; needed by 3.11-source-bookworm-*, "
                              "3.11-source-noble-*, 3.11-source-trixie-* (to build 3.11 with "
                              "deadsnakes only: add-python 3.11 --method deadsnakes)\n")


# ====================================================================== lock --upgrade


class FakeRegistry:
    def __init__(self, digests: dict[str, str]) -> None:
        self.digests = digests

    def digest(self, repo: str, tag: str) -> str | None:
        return self.digests.get(f"{repo}:{tag}")


DIGESTS = {
    "library/debian:bookworm-slim": "sha256:" + "1" * 64,
    "library/debian:trixie-slim": "sha256:" + "2" * 64,
    "library/ubuntu:24.04": "sha256:" + "3" * 64,
}


def _update(loaded: Loaded, old: Lock, fake: FakePythonOrg, *, upgrade: bool,
            only: list[str] | None = None, digests: dict[str, str] | None = None,
            ) -> tuple[Lock, list[lockfile.Change]]:
    reg = FakeRegistry(DIGESTS if digests is None else digests)
    return sources.update(
        loaded, old, upgrade=upgrade, only=only,
        index=PythonOrgIndex(BASE, KEYS, fake), registry_for=lambda host: cast(Any, reg),
        fetch=fake)


@pytest.fixture
def locked(repo_copy: Path, fake: FakePythonOrg) -> tuple[Loaded, Lock]:
    """The snapshot locked against the fake python.org and registry (`lock --upgrade` once)."""
    loaded = loader.load(repo_copy, TODAY)
    lock, _ = _update(loaded, lockfile.read(loaded), fake, upgrade=True)
    url = f"{BASE}3.13.13/Python-3.13.13.tar.xz"
    old_13 = lockfile.PythonLock("3.13.13", url, "1" * 64, url + ".asc", lock.pythons["3.13"].signing_key)
    return loaded, Lock({**lock.pythons, "3.13": old_13}, lock.bases, lock.pyenv, lock.deadsnakes)


def test_lock_without_upgrade_only_fills_what_is_missing(
    locked: tuple[Loaded, Lock], fake: FakePythonOrg
) -> None:
    loaded, lock = locked
    assert {k: v.digest for k, v in lock.bases.items()} == {
        "bookworm": DIGESTS["library/debian:bookworm-slim"], "noble": DIGESTS["library/ubuntu:24.04"],
        "trixie": DIGESTS["library/debian:trixie-slim"]}
    fake.requests.clear()
    new, changes = _update(loaded, lock, fake, upgrade=False)
    assert (new, changes) == (lock, [])
    assert not any(r.endswith((".tar.xz", ".tgz")) for r in fake.requests)
    missing = lockfile.without_python(lock, "3.13")
    new, changes = _update(loaded, missing, fake, upgrade=False)
    assert [str(c) for c in changes] == [
        f"python 3.13: (none) -> 3.13.15 ({sha(tarball('Python-3.13.15.tar.xz'))[:12]})"]
    assert new.pythons["3.12"] == lock.pythons["3.12"]


def test_lock_upgrade_bumps_patches_and_digests(
    locked: tuple[Loaded, Lock], fake: FakePythonOrg
) -> None:
    loaded, old = locked
    assert old.pythons["3.13"].version == "3.13.13"
    digests = {**DIGESTS, "library/debian:bookworm-slim": "sha256:" + "9" * 64}
    new, changes = _update(loaded, old, fake, upgrade=True, only=["3.13"], digests=digests)
    assert [str(c) for c in changes] == [
        f"python 3.13: 3.13.13 (111111111111) -> 3.13.15 ({sha(tarball('Python-3.13.15.tar.xz'))[:12]})"]
    assert new.pythons["3.13"].signature_url == f"{BASE}3.13.15/Python-3.13.15.tar.xz.asc"
    assert new.bases == old.bases  # --only 3.13: the bookworm digest is left alone
    new, changes = _update(loaded, old, fake, upgrade=True, digests=digests)
    assert [c.what for c in changes] == ["python 3.13", "base bookworm"]
    assert new.bases["bookworm"].digest == "sha256:" + "9" * 64
    new, changes = _update(loaded, old, fake, upgrade=True, only=["bookworm"], digests=digests)
    assert [c.what for c in changes] == ["base bookworm"]


def test_lock_upgrade_keeps_pinned_versions(repo_copy: Path, fake: FakePythonOrg) -> None:
    repo_copy.write_text(edit(repo_copy.read_text(), '- version: "3.13"', '- version: "3.13.13"'))
    loaded = loader.load(repo_copy, TODAY)
    lock, _ = _update(loaded, lockfile.read(loaded), fake, upgrade=True)
    assert lock.pythons["3.13"].version == "3.13.13"
    new, changes = _update(loaded, lock, fake, upgrade=True, only=["3.13"])
    assert (new.pythons["3.13"], changes) == (lock.pythons["3.13"], [])  # 3.13.15 exists: not taken


def test_lock_only_is_checked(locked: tuple[Loaded, Lock], fake: FakePythonOrg) -> None:
    loaded, lock = locked
    with pytest.raises(UsageError) as exc:
        _update(loaded, lock, fake, upgrade=True, only=["3.9"])
    assert str(exc.value) == (f"--only 3.9: not a Python minor or distro in {loaded.path} "
                              "(known: 3.12, 3.13, 3.14, bookworm, noble, trixie)")
    with pytest.raises(UsageError) as exc:
        _update(loaded, lock, fake, upgrade=False, only=["3.13"])
    assert str(exc.value) == ("--only selects what --upgrade re-resolves; add --upgrade "
                              "(without it, lock only fills what is missing)")


def test_lock_upgrade_cli(repo_copy: Path, fake: FakePythonOrg, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sources, "PythonOrgIndex", functools.partial(PythonOrgIndex, fetch=fake))
    monkeypatch.setattr(registry, "registry_for", lambda host, settings: FakeRegistry(DIGESTS))
    pyenv_tarball = b"pyenv 2.6.30 release tarball"

    def fetch(url: str) -> bytes:  # the pyenv release the repo's lock leaves unpinned
        return pyenv_tarball if url == PYENV_URL else fake(url)

    # cmd_lock passes no fetch: without this, lock fetched the pyenv tarball from github.com
    monkeypatch.setattr(sources, "update", functools.partial(sources.update, fetch=fetch))
    cfg = str(repo_copy)
    code, out, err = run_cli(["lock", "--config", cfg], capsys)
    assert code == 0, err
    assert "base bookworm: docker.io/library/debian:bookworm-slim -> " in out
    assert f"  pyenv: 2.6.30 (unlocked) -> 2.6.30 ({sha(pyenv_tarball)[:12]})" in out
    assert "python 3.13" not in out  # already locked: not touched without --upgrade
    code, out, err = run_cli(["lock", "--upgrade", "--only", "3.13", "--config", cfg], capsys)
    assert code == 0, err
    new_sha = sha(tarball("Python-3.13.15.tar.xz"))[:12]
    assert f"  python 3.13: 3.13.13 (2ab91ff40178) -> 3.13.15 ({new_sha})" in out
    assert "python 3.12" not in out and "base " not in out
    assert out.splitlines()[-2:] == [f"{repo_copy.with_suffix('.lock')}: 1 change(s)",
                                     f"re-rendered 4 file(s) under {repo_copy.parent / 'generated'}"]
    code, out, err = run_cli(["lock", "--upgrade", "--only", "3.13", "--config", cfg], capsys)
    assert (code, out.splitlines()[-1]) == (0, f"{repo_copy.with_suffix('.lock')}: 0 change(s)")
    code, _out, err = run_cli(["lock", "--only", "3.13", "--config", cfg], capsys)
    assert (code, err) == (2, "error: --only selects what --upgrade re-resolves; add --upgrade "
                              "(without it, lock only fills what is missing)\n")


# ====================================================================== EOL awareness

EOL_YAML = """\
schema_version: 1
publish: {registry: r.test, repository: org/python}
distros:
  trixie:
    family: debian
    release: "13"
    image: library/debian:trixie-slim
    methods: [source]
    packages: {runtime: [libc6], build: [gcc], dev: [g++]}
pythons:
  - version: "3.12"
  - version: "3.14"
variants:
  runtime: {size_budget_mb: 160}
tags:
  default_distro: trixie
  moving:
    - {template: "{minor}-{variant}"}
"""


def _eol_loaded(tmp_path: Path, today: dt.date) -> Loaded:
    path = tmp_path / "images.yaml"
    path.write_text(EOL_YAML)
    return loader.load(path, today)


@pytest.mark.parametrize(("today", "warned"), [
    (dt.date(2028, 8, 1), False),   # 91 days before 3.12's EOL
    (dt.date(2028, 8, 2), True),    # 90 days: warn
    (dt.date(2028, 10, 31), True),  # EOL day itself: still a warning (0 days left)
])
def test_eol_warning_window(tmp_path: Path, today: dt.date, warned: bool) -> None:
    loaded = _eol_loaded(tmp_path, today)
    left = (eol.PYTHON_EOL["3.12"] - today).days
    expected = (f"{loaded.path}: pythons[0].version: Python 3.12 reaches its end of life on "
                f"2028-10-31 ({left} days left); plan retire-python 3.12")
    assert (expected in loaded.warnings) is warned


def test_eol_passed_fails_validation_with_the_retire_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _eol_loaded(tmp_path, dt.date(2028, 11, 1))
    assert str(exc.value) == (f"{tmp_path / 'images.yaml'}:11: pythons[0].version: Python 3.12 "
                              "reached its end of life on 2028-10-31; remove it "
                              "(orchestrator retire-python 3.12)")
    assert exc.value.exit_code == 2


def test_plan_shows_days_left(tmp_path: Path) -> None:
    today = dt.date(2028, 8, 15)
    loaded = _eol_loaded(tmp_path, today)
    lock = Lock(
        {"3.12": lockfile.PythonLock("3.12.13", f"{BASE}3.12.13/Python-3.12.13.tar.xz", "a" * 64),
         "3.14": lockfile.PythonLock("3.14.4", f"{BASE}3.14.4/Python-3.14.4.tar.xz", "b" * 64)},
        {"trixie": lockfile.BaseLock("docker.io/library/debian:trixie-slim")})
    p = plan.build(loaded, lock, today=today)
    img = p.image("3.12-source-trixie-runtime")
    assert (img.python_eol_days, img.distro_eol_days) == (77, (eol.DISTRO_EOL["trixie"] - today).days)
    rows = {line.split()[0]: line.split()[-1] for line in p.table().splitlines()[1:-1]}
    assert rows["3.12-source-trixie-runtime"] == "77"  # the smaller of Python and distro
    assert rows["3.14-source-trixie-runtime"] == str((eol.DISTRO_EOL["trixie"] - today).days)
    assert '"python_eol_days": 77' in p.to_json()
