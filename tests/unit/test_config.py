"""images.yaml validation: one line per problem, ``file:line: key.path: problem; fix``, exit 2."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from orchestrator import settings
from orchestrator.config import loader, matrix
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.errors import ConfigError, ExitCode
from tests.unit.helpers import FIXTURES, REPO, TODAY, edit, line_of, run_cli, write_config

PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUQ2FzZSB0ZXN0IGNlcnRpZmljYXRlIG9ubHk=\n"
    "-----END CERTIFICATE-----\n"
)


@dataclass(frozen=True)
class Case:
    """A bad images.yaml: the minimal fixture with one edit, and the exact error line."""

    id: str
    old: str
    new: str
    # (file, edited text) -> the whole str(ConfigError)
    expected: Callable[[str, str], str]
    files: dict[str, str] = field(default_factory=dict)  # extra files next to images.yaml


def _bad_version(bad: str) -> Case:
    def expected(f: str, t: str) -> str:
        line = line_of(t, f'version: "{bad}"')
        return f'{f}:{line}: pythons[1].version: "{bad}" is not a CPython version; write "3.13" or "3.13.5"'

    return Case(f"bad-version-{bad}", '  - version: "3.13"\n', f'  - version: "{bad}"\n', expected)


CASES = [
    Case(
        "unknown-key-did-you-mean",
        "    family: debian\n", "    famly: debian\n",
        lambda f, t: f'{f}:{line_of(t, "famly:")}: distros.bookworm.famly: unknown key; '
                     'did you mean "family"?',
    ),
    Case(
        "unknown-top-level-key-did-you-mean",
        "runtime_user:", "lables: {team: x}\nruntime_user:",
        lambda f, t: f'{f}:{line_of(t, "lables:")}: lables: unknown key; did you mean "labels"?',
    ),
    Case(
        "unknown-top-level-key-lists-known-keys",
        "runtime_user:", "frobnicate: 1\nruntime_user:",
        lambda f, t: f'{f}:{line_of(t, "frobnicate:")}: frobnicate: unknown key; known keys: '
                     + ", ".join(ImagesConfig.model_fields),
    ),
    Case(
        "unknown-key-in-list-item",
        '  - version: "3.12"\n', '  - verison: "3.12"\n',
        lambda f, t: f'{f}:{line_of(t, "verison:")}: pythons[0].verison: unknown key; '
                     'did you mean "version"?',
    ),
    *[_bad_version(bad) for bad in ("3.x", "4.0", "3.13.5.1")],
    Case(
        "freeze-modules-not-a-module-name",
        "runtime_user:", "build:\n  freeze_modules: [encodings, encodings/utf_8]\nruntime_user:",
        lambda f, t: f'{f}:{line_of(t, "freeze_modules:")}: build.freeze_modules[1]: '
                     "'encodings/utf_8' is not a module name; "
                     'use a dotted stdlib module name, e.g. "encodings.utf_8"',
    ),
    Case(
        "python-listed-twice",
        '  - version: "3.13"\n', '  - version: "3.13"\n  - version: "3.13.5"\n',
        lambda f, t: f'{f}:{line_of(t, "3.13.5")}: pythons[2].version: Python 3.13 is listed '
                     "twice; remove pythons[1] or this one",
    ),
    Case(
        # Unquoted 3.10 must stay "3.10" (a float would be 3.1, with no EOL date known).
        "unquoted-3.10-is-3.10-and-past-eol",
        '  - version: "3.13"\n', '  - version: "3.13"\n  - version: 3.10\n',
        lambda f, t: f'{f}:{line_of(t, "3.10")}: pythons[2].version: Python 3.10 reached its '
                     "end of life on 2026-10-31; remove it (orchestrator retire-python 3.10)",
    ),
    Case(
        "python-past-eol",
        '  - version: "3.12"\n', '  - version: "3.10"\n  - version: "3.12"\n',
        lambda f, t: f'{f}:{line_of(t, "3.10")}: pythons[0].version: Python 3.10 reached its '
                     "end of life on 2026-10-31; remove it (orchestrator retire-python 3.10)",
    ),
    Case(
        "runtime-for-python-key-is-not-a-minor",
        "      runtime: [ca-certificates, libssl3]\n",
        '      runtime: [ca-certificates, libssl3]\n      runtime_for_python: {"3.x": [libnsl2]}\n',
        lambda f, t: f"{f}:{line_of(t, 'runtime_for_python')}: "
                     'distros.bookworm.packages.runtime_for_python.3.x: "3.x" is not a Python '
                     'minor version; write it as "3.12"',
    ),
    Case(
        "deadsnakes-on-debian",
        "    methods: [source]\n", "    methods: [source, deadsnakes]\n",
        lambda f, t: f"{f}:{line_of(t, 'methods: [source, deadsnakes]')}: "
                     "distros.bookworm.methods[1]: deadsnakes is an Ubuntu PPA and bookworm is "
                     "debian; use source or python-build on Debian",
    ),
    Case(
        "deadsnakes-on-debian-via-include",
        "include:\n", 'include:\n  - {distro: bookworm, python: "3.12", method: deadsnakes}\n',
        lambda f, t: f"{f}:{line_of(t, 'include:')}: include: deadsnakes is an Ubuntu PPA and "
                     "bookworm is debian; use source or python-build",
    ),
    Case(
        "deadsnakes-for-the-releases-own-python",
        'exclude:\n  - {distro: noble, python: "3.12", method: deadsnakes}\n', "exclude: []\n",
        lambda f, t: f"{f}:{line_of(t, 'methods: [source, deadsnakes]')}: distros.noble.methods: "
                     "the deadsnakes PPA does not publish Python 3.12 for noble (Ubuntu 24.04 "
                     'ships 3.12 itself); add exclude: [{distro: noble, python: "3.12", '
                     "method: deadsnakes}] and use method source or python-build for it "
                     "(or the distro's python3 package)",
    ),
    Case(
        "two-cells-same-tag",
        "python-build: pybuild,", 'python-build: "",',
        lambda f, t: f"{f}:{line_of(t, 'tags:')}: tags: cells 3.13-python-build-bookworm-dev and "
                     '3.13-source-bookworm-dev both produce the tag "3.13-dev-bookworm"; make the '
                     "templates include {distro}, {method} and {variant}, or give the methods "
                     "distinct method_suffix values",
    ),
    Case(
        "distro-past-eol",
        '    release: "12"\n', '    release: "12"\n    eol: 2026-01-31\n',
        lambda f, t: f"{f}:{line_of(t, '  bookworm:')}: distros.bookworm: bookworm reached its "
                     "end of life on 2026-01-31; remove it from distros",
    ),
    Case(
        # Every problem is reported: the rename also leaves default_distro and include dangling.
        "distro-without-known-eol",
        "  bookworm:\n", "  forky:\n",
        lambda f, t: f"{f}:{line_of(t, '  forky:')}: distros.forky.eol: no end-of-life date "
                     "known; add eol: YYYY-MM-DD\n"
                     f"{f}:{line_of(t, 'default_distro:')}: tags.default_distro: unknown distro "
                     '"bookworm"; one of: forky, noble\n'
                     f"{f}:{line_of(t, '{distro: bookworm, python')}: include[0].distro: unknown "
                     'distro "bookworm"; one of: forky, noble',
    ),
    Case(
        "empty-matrix",
        'exclude:\n  - {distro: noble, python: "3.12", method: deadsnakes}\n',
        "exclude:\n  - {distro: noble}\n  - {distro: bookworm}\n",
        lambda f, t: f"{f}:{line_of(t, 'exclude:')}: exclude: the matrix is empty: every cell "
                     "is excluded; remove an exclude rule or add a distro/python",
    ),
    Case(
        "yaml-syntax-error",
        "  repository: org/python\n", "  repository: org/python: extra\n",
        lambda f, t: f"{f}:{line_of(t, 'org/python: extra')}: YAML syntax error: mapping values "
                     "are not allowed here; fix the YAML at that line",
    ),
    Case(
        "duplicate-key",
        "  repository: org/python\n", "  repository: org/python\n  repository: org/other\n",
        lambda f, t: f"{f}:{line_of(t, 'org/other')}: publish.repository: duplicate key; "
                     "keep one of them",
    ),
    Case(
        "missing-required-key",
        "  repository: org/python\n", "",
        lambda f, t: f'{f}:{line_of(t, "publish:")}: publish.repository: required key is '
                     'missing; add "repository"',
    ),
    Case(
        "value-not-allowed",
        "    family: debian\n", "    family: redhat\n",
        lambda f, t: f"{f}:{line_of(t, 'redhat')}: distros.bookworm.family: Input should be "
                     "'debian' or 'ubuntu'; use one of the values listed",
    ),
    Case(
        "unknown-tag-placeholder",
        '{template: "{minor}-{variant}-{distro}{method}"}',
        '{template: "{minor}-{variant}-{distr}{method}"}',
        lambda f, t: f"{f}:{line_of(t, '{distr}')}: tags.moving[1].template: unknown placeholder "
                     "{distr}; use {minor}, {version}, {variant}, {distro}, {method}, {date}",
    ),
    Case(
        "immutable-tag-without-date",
        "runtime_user:", '  immutable: "{version}-{variant}-{distro}{method}"\nruntime_user:',
        lambda f, t: f"{f}:{line_of(t, 'immutable:')}: tags.immutable: the immutable tag must "
                     'contain {version} and {date}; e.g. "{version}.{date}-{variant}-{distro}{method}"',
    ),
    Case(
        "unknown-default-distro",
        "  default_distro: bookworm\n", "  default_distro: bookwrom\n",
        lambda f, t: f"{f}:{line_of(t, 'bookwrom')}: tags.default_distro: unknown distro "
                     '"bookwrom"; did you mean "bookworm"?',
    ),
    Case(
        "exclude-unknown-distro",
        '  - {distro: noble, python: "3.12"', '  - {distro: nobel, python: "3.12"',
        lambda f, t: f"{f}:{line_of(t, 'nobel')}: exclude[0].distro: unknown distro \"nobel\"; "
                     'did you mean "noble"?',
    ),
    Case(
        "include-needs-distro-python-method",
        "include:\n", 'include:\n  - {distro: noble, python: "3.13"}\n',
        lambda f, t: f"{f}:{line_of(t, '{distro: noble, python')}: include[0]: an "
                     "include rule needs distro, python and method; name all three (variant is "
                     "optional)",
    ),
    Case(
        "root-runtime-user-by-name",
        "runtime_user: {name: app,", "runtime_user: {name: root,",
        lambda f, t: f"{f}:{line_of(t, 'runtime_user:')}: runtime_user: the runtime user must "
                     "not be root; use a uid >= 1000",
    ),
    Case(
        "root-runtime-user-by-uid",
        "uid: 10001,", "uid: 0,",
        lambda f, t: f"{f}:{line_of(t, 'runtime_user:')}: runtime_user: the runtime user must "
                     "not be root; use a uid >= 1000",
    ),
    Case(
        "ca-certificate-missing",
        "runtime_user:", "ca_certificates: [certs/corp.crt]\nruntime_user:",
        lambda f, t: f"{f}:{line_of(t, 'ca_certificates:')}: ca_certificates[0]: certs/corp.crt: "
                     "no such file; give a PEM file relative to images.yaml",
    ),
    Case(
        "ca-certificate-not-pem",
        "runtime_user:", "ca_certificates: [certs/corp.crt]\nruntime_user:",
        lambda f, t: f"{f}:{line_of(t, 'ca_certificates:')}: ca_certificates[0]: certs/corp.crt "
                     "is not a PEM certificate; give a PEM (.crt) file",
        files={"certs/corp.crt": "not a certificate\n"},
    ),
]


def _write_case(tmp_path: Path, minimal_text: str, case: Case) -> tuple[Path, str]:
    text = edit(minimal_text, case.old, case.new)
    for rel, content in case.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    return write_config(tmp_path, text), text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_gives_one_exact_line(tmp_path: Path, minimal_text: str, case: Case) -> None:
    path, text = _write_case(tmp_path, minimal_text, case)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert str(info.value) == case.expected(str(path), text)
    assert info.value.lines() == case.expected(str(path), text).splitlines()  # one line per problem
    assert info.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_command_exits_2_with_the_line(
    tmp_path: Path, minimal_text: str, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    path, text = _write_case(tmp_path, minimal_text, case)
    code, out, err = run_cli(["validate", "--config", str(path)], capsys)
    assert code == 2
    assert out == ""
    assert err == "".join(f"error: {line}\n" for line in case.expected(str(path), text).splitlines())
    assert "Traceback" not in err


@pytest.mark.spawns("python")
def test_validate_subprocess_exit_code_and_no_traceback(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, "    family: debian\n", "    famly: debian\n")
    path = write_config(tmp_path, text)
    env = {**os.environ, "ORCH_DATE": "20261121", "ORCH_LOG_FORMAT": "console"}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", "--config", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=100,
    )
    assert proc.returncode == 2
    expected = (f'error: {path}:{line_of(text, "famly:")}: distros.bookworm.famly: unknown key; '
                'did you mean "family"?')
    assert proc.stderr.strip().splitlines() == [expected]
    assert "Traceback" not in proc.stderr


def test_minimal_fixture_is_valid() -> None:
    loaded = loader.load(FIXTURES / "minimal.yaml", today=TODAY)
    assert loaded.warnings == ()
    assert [p.version for p in loaded.config.pythons] == ["3.12", "3.13"]


def test_repo_images_yaml_is_valid(repo_loaded: Loaded) -> None:
    # the only warning: python-build cannot cross-compile, its include'd cell stays amd64
    assert [w.split(": ", 1)[1] for w in repo_loaded.warnings] == [
        "include[0]: python-build cannot cross-compile: its images on bookworm are built for "
        "linux/amd64 only (use method source for linux/arm64)"]
    assert repo_loaded.config.tags.default_distro == "bookworm"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert str(info.value) == f"{path}: file not found; pass --config PATH or create it"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_config(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert str(info.value) == f"{path}: expected a mapping at the top level; see images.schema.json"


def test_unquoted_minor_versions_stay_strings() -> None:
    data, lines = loader.parse_yaml("pythons:\n  - version: 3.10\n  - version: 3.13\n", "x.yaml")
    assert data == {"pythons": [{"version": "3.10"}, {"version": "3.13"}]}
    assert lines[("pythons", 0, "version")] == 2


def test_unquoted_3_10_loads_as_3_10_before_its_eol(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13"\n  - version: 3.10\n')
    loaded = loader.load(write_config(tmp_path, text), today=dt.date(2026, 1, 1))
    assert [p.version for p in loaded.config.pythons] == ["3.12", "3.13", "3.10"]
    assert loaded.warnings == ()


def test_python_eol_within_90_days_is_a_warning(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13"\n  - version: "3.11"\n')
    path = write_config(tmp_path, text)
    loaded = loader.load(path, today=dt.date(2027, 9, 1))
    assert loaded.warnings == (
        f"{path}: pythons[2].version: Python 3.11 reaches its end of life on 2027-10-31 "
        "(60 days left); plan retire-python 3.11",
    )
    # The day after its EOL it is an error.
    with pytest.raises(ConfigError, match=r"Python 3\.11 reached its end of life on 2027-10-31"):
        loader.load(path, today=dt.date(2027, 11, 1))


def test_validate_command_prints_warnings_and_exits_0(
    tmp_path: Path, minimal_text: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13"\n  - version: "3.11"\n')
    path = write_config(tmp_path, text)
    monkeypatch.setattr(settings, "_settings", settings.Settings.from_environ(
        {"ORCH_DATE": "20270901", "ORCH_LOG_FORMAT": "console", "DOCKER_CONFIG": str(tmp_path)}))
    code, out, err = run_cli(["validate", "--config", str(path)], capsys)
    assert code == 0
    assert out == (f"{path}: valid (18 images, 1 warnings), but {tmp_path / 'images.lock'} is missing: "
                   f"run `orchestrator lock --config {path}` before plan, render or build\n")
    assert "Python 3.11 reaches its end of life on 2027-10-31 (60 days left)" in err


def test_distro_eol_from_the_builtin_table(tmp_path: Path, minimal_text: str) -> None:
    path = write_config(tmp_path, minimal_text)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=dt.date(2028, 7, 1))
    assert str(info.value) == (f"{path}:{line_of(minimal_text, '  bookworm:')}: distros.bookworm: "
                               "bookworm reached its end of life on 2028-06-30; remove it from distros")


def test_distro_eol_within_90_days_is_a_warning(tmp_path: Path, minimal_text: str) -> None:
    path = write_config(tmp_path, minimal_text)
    loaded = loader.load(path, today=dt.date(2028, 5, 1))
    assert f"{path}: distros.bookworm: bookworm reaches its end of life on 2028-06-30 (60 days left)" \
        in loaded.warnings


def test_valid_ca_certificate_is_accepted(tmp_path: Path, minimal_text: str) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "corp.crt").write_text(PEM)
    text = edit(minimal_text, "runtime_user:", "ca_certificates: [certs/corp.crt]\nruntime_user:")
    loaded = loader.load(write_config(tmp_path, text), today=TODAY)
    assert loaded.config.ca_certificates == ("certs/corp.crt",)


def test_no_cell_on_default_distro_warns(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, "exclude:\n", "exclude:\n  - {distro: bookworm, python: \"3.12\"}\n")
    path = write_config(tmp_path, text)
    loaded = loader.load(path, today=TODAY)
    assert loaded.warnings == (
        f"{path}: pythons: 3.12 has no cell on the default distro/method (bookworm/source); "
        "its short tags (e.g. 3.12-runtime) will not be published; "
        'set tags.defaults: {"3.12": {distro: ..., method: ...}} to a distro that has it',
    )


def test_a_minor_default_publishes_short_tags_from_another_distro(tmp_path: Path,
                                                                  minimal_text: str) -> None:
    """tags.defaults: 3.12's short tags come from noble when bookworm has no 3.12 (no warning)."""
    text = edit(minimal_text, "exclude:\n", "exclude:\n  - {distro: bookworm, python: \"3.12\"}\n")
    text = edit(text, "  default_distro: bookworm\n",
                '  default_distro: bookworm\n  defaults:\n    "3.12": {distro: noble}\n')
    path = write_config(tmp_path, text)
    loaded = loader.load(path, today=TODAY)
    assert loaded.warnings == ()
    cells = matrix.expand(loaded.config)
    defaults = {(c.minor, c.distro, c.method) for c in cells if matrix.is_default(loaded.config, c, cells)}
    assert ("3.12", "noble", "source") in defaults
    assert not any(m == "3.12" and d == "bookworm" for m, d, _ in defaults)
    assert any(m == "3.13" and d == "bookworm" for m, d, _ in defaults)


def test_a_minor_default_naming_an_unknown_minor_or_distro_is_refused(tmp_path: Path,
                                                                       minimal_text: str) -> None:
    text = edit(minimal_text, "  default_distro: bookworm\n",
                '  default_distro: bookworm\n  defaults:\n    "3.9": {distro: nobel}\n')
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        loader.load(path, today=TODAY)
    msg = str(exc.value)
    assert 'tags.defaults.3.9: "3.9" is not a minor of pythons' in msg
    assert 'unknown distro "nobel"' in msg and 'did you mean "noble"?' in msg


def test_config_models_are_frozen(repo_loaded: Loaded) -> None:
    with pytest.raises(Exception, match="frozen"):
        repo_loaded.config.publish.registry = "elsewhere"  # type: ignore[misc]


# --------------------------------------------------------------------------- JSON Schema


def _jsonable(value: Any) -> Any:
    """YAML gives datetime.date for 2029-05-31; JSON Schema (format: date) wants strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((REPO / "images.schema.json").read_text())
    return schema


def test_committed_schema_is_current() -> None:
    committed = (REPO / "images.schema.json").read_text()
    assert committed == loader.json_schema(), (
        "images.schema.json is stale: run `python -m orchestrator schema -o images.schema.json`"
    )


@pytest.mark.parametrize("path", [REPO / "images.yaml", FIXTURES / "minimal.yaml"],
                         ids=["images.yaml", "minimal.yaml"])
def test_schema_accepts_valid_configs(path: Path) -> None:
    data, _ = loader.parse_yaml(path.read_text(), str(path))
    jsonschema.Draft202012Validator.check_schema(_schema())
    jsonschema.Draft202012Validator(_schema()).validate(_jsonable(data))


def test_schema_rejects_unknown_keys(minimal_text: str) -> None:
    data, _ = loader.parse_yaml(edit(minimal_text, "    family: debian\n", "    famly: debian\n"),
                                "x.yaml")
    with pytest.raises(jsonschema.ValidationError, match="famly"):
        jsonschema.Draft202012Validator(_schema()).validate(_jsonable(data))


def test_schema_rejects_a_float_version() -> None:
    """Editors using plain YAML read unquoted 3.10 as 3.1: the schema flags it as not a string."""
    data, _ = loader.parse_yaml((FIXTURES / "minimal.yaml").read_text(), "x.yaml")
    data["pythons"][0]["version"] = 3.1
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        jsonschema.Draft202012Validator(_schema()).validate(_jsonable(data))
