"""Hostile images.yaml input (issue 12): every case is refused (or warned about) with its exact
one-line message naming the file, line, key and fix; exit 2; never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.config import loader
from orchestrator.config.model import ImagesConfig
from orchestrator.config.tags import Tags
from orchestrator.errors import ConfigError, ExitCode
from tests.unit.helpers import TODAY, edit, line_of, run_cli, write_config

PKG_FIX = "use lowercase letters, digits, '+', '-', '.' (e.g. libssl3)"
TAG_FIX = "tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
CONTROL_FIX = "remove it (newlines and tabs cannot be written into a Dockerfile value)"
TEMPLATE = '{template: "{minor}-{variant}-{distro}{method}"}'
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@dataclass(frozen=True)
class Case:
    id: str
    old: str
    new: str
    needle: str  # text on the line every message points at
    messages: tuple[str, ...]  # after "<file>:<line>: "


def _c(id: str, old: str, new: str, needle: str, *messages: str) -> Case:
    return Case(id, old, new, needle, messages)


_USER = "runtime_user:"
CASES = [
    # 1. injection: values that would leave their word in a Dockerfile
    _c("package-with-shell", "      runtime: [ca-certificates, libssl3]\n",
       '      runtime: [ca-certificates, "curl; touch /pwned", "libssl3\\nRUN id"]\n', "curl; touch",
       "distros.bookworm.packages.runtime[1]: 'curl; touch /pwned' is not a Debian package name; " + PKG_FIX,
       "distros.bookworm.packages.runtime[2]: 'libssl3\\nRUN id' is not a Debian package name; " + PKG_FIX),
    _c("env-keys", _USER, 'env: {"MY VAR": x, "A\\nB": y}\n' + _USER, "MY VAR",
       "env.\"MY VAR\": 'MY VAR' is not an environment variable name; use letters, digits and '_', "
       "not starting with a digit (e.g. MY_VAR)",
       "env.\"A\\nB\": 'A\\nB' is not an environment variable name; use letters, digits and '_', "
       "not starting with a digit (e.g. MY_VAR)"),
    _c("label-key", _USER, 'labels: {"a b": x}\n' + _USER, "a b",
       "labels.\"a b\": 'a b' is not a label key; use letters, digits, '.', '-' and '_' "
       "(e.g. org.example.team)"),
    _c("label-value-newline", _USER, 'labels: {team: "a\\nRUN id"}\n' + _USER, "labels:",
       "labels.team: 'a\\nRUN id' contains a control character ('\\n'); " + CONTROL_FIX),
    _c("home-with-semicolon", "home: /home/app", "home: /home/app;id", "home: /home/app;id",
       "runtime_user.home: '/home/app;id' is not a plain absolute path; write it like /home/app "
       "(letters, digits, '.', '_', '-', '+', '@' and '/')"),
    _c("pypi-with-semicolon", _USER, "sources: {pypi: 'https://x;id'}\n" + _USER, "sources:",
       "sources.pypi: 'https://x;id' is not an http(s) URL; write it like https://host[:port]/path "
       "(no spaces, quotes, '$', ';', '`')"),
    _c("cflags-command-substitution", _USER,
       "profiles: {release: {pgo: true, lto: true, cflags: '$(id)'}}\n" + _USER, "profiles:",
       "profiles.release.cflags: '$(id)' contains '$' or '`'; write the flags out: make and the "
       "shell would expand them"),
    _c("configure-opt-newline", '  - version: "3.13"\n',
       '  - version: "3.13"\n    configure_opts: ["--a\\nRUN id"]\n', "configure_opts",
       "pythons[1].configure_opts[0]: '--a\\nRUN id' contains a control character ('\\n'); " + CONTROL_FIX),
    _c("dev-tools-not-requirements", _USER, 'dev_tools: ["build==1.3.0; id", "x`id`"]\n' + _USER,
       "dev_tools:",
       "dev_tools[0]: 'build==1.3.0; id' is not a pip requirement; pin it like \"build==1.3.0\"",
       "dev_tools[1]: 'x`id`' is not a pip requirement; pin it like \"build==1.3.0\""),
    _c("image-with-shell", "image: library/debian:bookworm-slim", "image: 'library/debian:bookworm-slim; id'",
       "bookworm-slim; id",
       "distros.bookworm.image: 'library/debian:bookworm-slim; id' is not an image reference; write "
       "[registry/]repository[:tag][@sha256:...] in lowercase, e.g. library/debian:bookworm-slim"),
    _c("release-newline", '    release: "12"\n', '    release: "12\\nRUN id"\n', "12\\nRUN",
       "distros.bookworm.release: '12\\nRUN id' is not a release number; write it like \"12\" or \"24.04\""),
    _c("ppa-archive-placeholder", _USER, "sources: {deadsnakes: {archive: 'https://x/{pap}'}}\n" + _USER,
       "sources:", "sources.deadsnakes.archive: unknown placeholder {pap}; placeholders allowed here: {ppa}"),
    _c("ppa-archive-query", _USER, "sources: {deadsnakes: {archive: 'https://x/{ppa}?a=b'}}\n" + _USER,
       "sources:", "sources.deadsnakes.archive: 'https://x/{ppa}?a=b' has a query; write the archive's "
       "root, like https://ppa.launchpadcontent.net/{ppa}/ubuntu (apt appends dists/<suite>/...)"),
    # 2. tracebacks before
    _c("invalid-date", '    release: "12"\n', '    release: "12"\n    eol: 2028-13-45\n', "2028-13-45",
       "distros.bookworm.eol: 2028-13-45 is not a valid date (month must be in 1..12); write a real "
       "date as YYYY-MM-DD"),
    _c("template-conversion", TEMPLATE, TEMPLATE.replace("{minor}", "{minor!x}"), "{minor!x}",
       "tags.moving[1].template: {minor!x}: conversions and format specs are not supported; write {minor}"),
    _c("template-format-spec", TEMPLATE, TEMPLATE.replace("{minor}", "{minor:d}"), "{minor:d}",
       "tags.moving[1].template: {minor:d}: conversions and format specs are not supported; write {minor}"),
    _c("path-unknown-placeholder", _USER, "env: {PATH: '{prefix}/bin:{foo}'}\n" + _USER, "env:",
       "env.PATH: unknown placeholder {foo}; the only placeholder is {prefix} (the Python install prefix)"),
    _c("complex-key", _USER, "env: {[a, b]: x}\n" + _USER, "env:",
       "env: a key is a list (complex key); use a plain name as the key"),
    _c("recursive-alias", _USER, "x: &a [*a]\n" + _USER, "x: &a",
       "YAML alias refers to a node that contains it (recursive alias); remove the alias (*name) "
       "inside its own anchor (&name)"),
    # 4. accepted silently before
    _c("tag-with-space", TEMPLATE, TEMPLATE.replace("}-{variant", "} {variant"), "{minor} {variant",
       'tags.moving[1].template: for 3.12-source-bookworm-dev: "3.12 dev-bookworm" is not a valid OCI '
       "tag (has characters other than letters, digits, '_', '.', '-'); " + TAG_FIX),
    _c("tag-with-colon", TEMPLATE, TEMPLATE.replace("}-{variant", "}:{variant"), "{minor}:{variant",
       'tags.moving[1].template: for 3.12-source-bookworm-dev: "3.12:dev-bookworm" is not a valid OCI '
       "tag (has characters other than letters, digits, '_', '.', '-'); " + TAG_FIX),
    _c("tag-leading-dash", TEMPLATE, TEMPLATE.replace('"{minor}', '"-{minor}'), '"-{minor}',
       'tags.moving[1].template: for 3.12-source-bookworm-dev: "-3.12-dev-bookworm" is not a valid '
       "OCI tag (starts with '-' or '.'); " + TAG_FIX),
    _c("tag-too-long", TEMPLATE, TEMPLATE.replace('{method}"', '{method}' + "x" * 120 + '"'), "x" * 120,
       'tags.moving[1].template: for 3.12-source-bookworm-dev: "3.12-dev-bookworm' + "x" * 120 + '" is '
       "not a valid OCI tag (longer than 128 characters); " + TAG_FIX),
    _c("tag-like-a-staging-tag", TEMPLATE, TEMPLATE.replace('"{minor}', '"_staging-{minor}'),
       '"_staging-{minor}',
       'tags.moving[1].template: for 3.12-source-bookworm-dev: "_staging-3.12-dev-bookworm" starts '
       'with "_staging-", the prefix of the internal tags a push stages images under before they '
       'may be published; start the template with something else, e.g. "{minor}"'),
    _c("date-format-slash", "  default_distro: bookworm\n",
       '  default_distro: bookworm\n  date_format: "%Y/%m/%d"\n', "date_format",
       'tags.date_format: "%Y/%m/%d" gives "2026/12/31", which cannot be part of a tag; use strftime '
       'fields joined by letters, digits, ".", "_", "-", e.g. "%Y%m%d"'),
    _c("method-suffix-space", "python-build: pybuild,", 'python-build: "py build",', "py build",
       "tags.method_suffix.python-build: \"py build\" cannot be part of a tag; use letters, digits, "
       "'.', '_' and '-' only"),
    _c("registry-with-scheme", "registry: registry.test", "registry: https://registry.test", "https://",
       "publish.registry: 'https://registry.test' has a scheme; write the host[:port] only, e.g. "
       '"registry.test"'),
    _c("registry-with-path", "registry: registry.test", "registry: registry.test/org", "registry.test/org",
       "publish.registry: 'registry.test/org' has a path; write the host[:port] only, e.g. "
       '"registry.test"; the path belongs in publish.repository'),
    _c("uppercase-repository", "repository: org/python", "repository: Org/Python", "Org/Python",
       "publish.repository: 'Org/Python' has uppercase letters; repositories are lowercase: "
       'write "org/python"'),
    _c("uid-out-of-range", "uid: 10001,", "uid: 99999999999,", "99999999999",
       "runtime_user.uid: uid 99999999999 is out of range (at most 2147483647); use a uid like 10001"),
    _c("uid-boolean", "uid: 10001,", "uid: true,", "uid: true",
       "runtime_user.uid: true is a boolean, not a number; write a number"),
    _c("gid-zero", "gid: 10001,", "gid: 0,", "gid: 0",
       "runtime_user.gid: gid 0 is the root group; use a gid >= 1000, e.g. 10001"),
    _c("max-pythons-exceeded", "pythons:\n", "max_pythons: 1\npythons:  # two\n", "# two",
       "pythons: 2 Pythons are listed but max_pythons is 1; retire one (orchestrator retire-python "
       "X.Y) or raise max_pythons"),
    _c("path-without-prefix", _USER, "env: {PATH: '/usr/bin:/bin'}\n" + _USER, "env:",
       "env.PATH: {prefix}/bin is not on the PATH: python3 would not be found; start it with "
       '"{prefix}/bin:", e.g. "{prefix}/bin:/usr/local/bin:/usr/bin:/bin"'),
    _c("env-value-expansion-and-newline", _USER, "env: {X: '${HOME}', Y: \"a\\nb\"}\n" + _USER, "env:",
       "env.X: '${HOME}' contains a $ expansion; ENV values are literal here: write the value itself",
       "env.Y: 'a\\nb' contains a control character ('\\n'); " + CONTROL_FIX),
    # 5. weak messages before
    _c("unquoted-number-version", '  - version: "3.12"\n', "  - version: 3\n", "version: 3",
       'pythons[0].version: 3 is read by YAML as a number, not a string; quote it: "3"'),
    _c("unquoted-number-and-boolean-env", _USER, "env: {PYTHONUNBUFFERED: 1, X: yes}\n" + _USER, "env:",
       'env.PYTHONUNBUFFERED: 1 is read by YAML as a number, not a string; quote it: "1"',
       'env.X: yes is read by YAML as a boolean, not a string; quote it: "yes"'),
    _c("on-as-key-is-on", _USER, "on: x\n" + _USER, "on: x",
       "on: unknown key; known keys: " + ", ".join(ImagesConfig.model_fields)),
    _c("empty-variants", "variants:\n  runtime: {size_budget_mb: 160}\n  dev: {size_budget_mb: 520}\n",
       "variants: {}\n", "variants:",
       "variants: no variant is listed, so the matrix is empty; add runtime (and dev), e.g. variants: "
       "{runtime: {size_budget_mb: 160}}"),
]


def _write(tmp_path: Path, minimal_text: str, case: Case) -> tuple[Path, list[str]]:
    text = edit(minimal_text, case.old, case.new)
    path = write_config(tmp_path, text)
    where = f"{path}:{line_of(text, case.needle)}: "
    return path, [where + m for m in case.messages]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_config_is_refused_with_one_line_each(
    tmp_path: Path, minimal_text: str, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    path, expected = _write(tmp_path, minimal_text, case)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert info.value.lines() == expected
    assert info.value.exit_code == ExitCode.BAD_INPUT
    code, out, err = run_cli(["validate", "--config", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"error: {m}" for m in expected]


def test_ca_certificates_must_be_crt_with_distinct_names(tmp_path: Path, minimal_text: str) -> None:
    for rel in ("a/corp.pem", "b/corp.crt", "c/corp.crt"):
        (tmp_path / rel).parent.mkdir()
        (tmp_path / rel).write_text(PEM)
    text = edit(minimal_text, _USER, "ca_certificates: [a/corp.pem, b/corp.crt, c/corp.crt]\n" + _USER)
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    at = f"{path}:{line_of(text, 'ca_certificates')}: "
    assert info.value.lines() == [
        at + "ca_certificates[0]: a/corp.pem: the file name does not end in .crt (update-ca-certificates "
        "reads only *.crt); rename it to corp.crt",
        at + "ca_certificates[2]: c/corp.crt: same file name as ca_certificates[1] (one would overwrite "
        "the other); rename one of them",
    ]


WARN_CASES = [
    ("exclude-matches-nothing", "exclude:\n", "exclude:\n  - {distro: bookworm, method: deadsnakes}\n",
     "exclude[0]: matches no cell; remove it or fix its distro/python/method/variant"),
    ("include-adds-nothing", "include:\n",
     'include:\n  - {distro: bookworm, python: "3.12", method: source}\n',
     "include[0]: adds no cell (bookworm/3.12/source is in the matrix already); remove it"),
    ("include-and-exclude-cancel", "exclude:\n", "exclude:\n  - {method: python-build}\n",
     "include[0] and exclude[0] cancel each other (every cell the include adds is excluded); "
     "remove both or narrow the exclude"),
]


@pytest.mark.parametrize(("old", "new", "warning"), [w[1:] for w in WARN_CASES],
                         ids=[w[0] for w in WARN_CASES])
def test_rules_that_do_nothing_warn(
    tmp_path: Path, minimal_text: str, old: str, new: str, warning: str
) -> None:
    path = write_config(tmp_path, edit(minimal_text, old, new))
    assert loader.load(path, today=TODAY).warnings == (f"{path}: {warning}",)


def test_merge_keys_are_supported(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, "  bookworm:\n    family: debian\n", "  bookworm: &bw\n    family: debian\n")
    text = edit(text, "pythons:\n", "  trixie:\n    <<: *bw\n    image: library/debian:trixie-slim\n"
                                    "    release: \"13\"\npythons:\n")
    loaded = loader.load(write_config(tmp_path, text), today=TODAY)
    trixie, bookworm = loaded.config.distros["trixie"], loaded.config.distros["bookworm"]
    assert (trixie.release, trixie.image) == ("13", "library/debian:trixie-slim")
    assert trixie.packages == bookworm.packages and trixie.methods == bookworm.methods


def test_merge_key_of_a_scalar_is_refused(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, _USER, "env: {<<: x}\n" + _USER)
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    assert str(info.value) == (f"{path}:{line_of(text, 'env:')}: env.<<: a merge key (<<) needs a mapping "
                               "or a list of mappings; merge an anchored mapping: <<: *name")


def test_every_shape_problem_at_once(tmp_path: Path) -> None:
    text = ("schema_version: 1\npublish: {registry: r.test, repository: x}\ndistros: 5\npythons: \"3.13\"\n"
            "variants: {runtime: {size_budget_mb: yes}}\ntags: {default_distro: x, moving: [], colour: 1}\n")
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    shape = "see images.schema.json for the expected shape"
    assert info.value.lines() == [
        f'{path}:6: tags.colour: unknown key; known keys: {", ".join(Tags.model_fields)}',
        f"{path}:5: variants.runtime.size_budget_mb: yes is a boolean, not a number; write a number",
        f"{path}:3: distros: Input should be a valid dictionary; {shape}",
        f"{path}:4: pythons: Input should be a valid tuple; {shape}",
    ]
