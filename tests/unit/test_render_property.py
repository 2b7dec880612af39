"""Property (issue 12): an arbitrary string in any free-text field of images.yaml / images.lock
is either refused at validation (one line per problem, exit 2) or rendered so that it stays
inside its word: the Dockerfile has the same instructions, and each instruction the same words,
as with a harmless value in its place (words read as the shell and the Dockerfile parser read
them: see dockerfile_words)."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from orchestrator import render
from orchestrator.config import eol, loader, yamlsafe
from orchestrator.config.checks import values
from orchestrator.errors import ConfigError, ExitCode, raise_all
from orchestrator.lock import checks
from orchestrator.lock.lockfile import Lock
from tests.unit.dockerfile_words import instructions, words
from tests.unit.helpers import FIXTURES, TODAY

Data = dict[str, Any]


@dataclass(frozen=True)
class Field:
    name: str
    set: Callable[[Data, Data, str], None]  # (images.yaml data, images.lock data, value)
    harmless: str  # a valid value that occurs nowhere else in the rendered files
    rendered: Callable[[str], str] = lambda v: v  # how the value appears once filled in
    empty_is_absent: bool = False  # "" leaves the option out (cflags): a different, valid file


def _cfg(*keys: str | int) -> Callable[[Data, Data, str], None]:
    def put(cfg: Data, lock: Data, value: str) -> None:
        target: Any = cfg
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return put


def _lock(*keys: str) -> Callable[[Data, Data, str], None]:
    def put(cfg: Data, lock: Data, value: str) -> None:
        _cfg(*keys)(lock, cfg, value)
    return put


def _both(cfg_keys: tuple[str, ...], lock_keys: tuple[str, ...]) -> Callable[[Data, Data, str], None]:
    """A lock URL the check holds to images.yaml's source (pyenv.url, deadsnakes.key_url):
    the value in both, so it reaches the Dockerfile when the two agree."""
    def put(cfg: Data, lock: Data, value: str) -> None:
        _cfg(*cfg_keys)(cfg, lock, value)
        _lock(*lock_keys)(cfg, lock, value)
    return put


def _key(section: str) -> Callable[[Data, Data, str], None]:
    def put(cfg: Data, lock: Data, value: str) -> None:
        cfg.setdefault(section, {})[value] = "x"
    return put


FIELDS = [
    Field("packages.runtime", _cfg("distros", "bookworm", "packages", "runtime", 0), "zqmarker"),
    Field("packages.dev", _cfg("distros", "jammy", "packages", "dev", 0), "zqmarker"),
    Field("env key", _key("env"), "ZQMARKER"),
    Field("env value", _cfg("env", "ZQ"), "zqmarker"),
    Field("env.PATH", _cfg("env", "PATH"), "{prefix}/bin:/zqmarker",
          lambda v: v.replace("{prefix}", "/opt/acme/python/3.13")),
    Field("label key", _key("labels"), "zqmarker"),
    Field("label value", _cfg("labels", "org.zq"), "zqmarker"),
    Field("runtime_user.home", _cfg("runtime_user", "home"), "/zqmarker"),
    Field("runtime_user.name", _cfg("runtime_user", "name"), "zqmarker"),
    Field("publish.org", _cfg("publish", "org"), "zqmarker"),
    Field("sources.pypi", _cfg("sources", "pypi"), "https://zqmarker.test/simple"),
    Field("sources.deadsnakes.archive", _cfg("sources", "deadsnakes", "archive"),
          "https://zqmarker.test/{ppa}/ubuntu", lambda v: v.replace("{ppa}", "deadsnakes/ppa")),
    Field("pythons[0].configure_opts", _cfg("pythons", 0, "configure_opts", 0), "--zqmarker"),
    Field("profiles.release.configure_opts", _cfg("profiles", "release", "configure_opts", 0), "--zqmarker"),
    Field("profiles.release.cflags", _cfg("profiles", "release", "cflags"), "-zqmarker",
          empty_is_absent=True),
    Field("dev_tools", _cfg("dev_tools", 0), "zqmarker==1.0"),
    Field("distros.release", _cfg("distros", "bookworm", "release"), "zqmarker"),
    Field("lock sha256", _lock("pythons", "3.13", "sha256"), "0123456789abcdef" * 4),
    # the one fingerprint check_against takes for 3.13: the release manager key eol pins
    Field("lock signing key", _lock("pythons", "3.13", "signing_key", "fingerprint"),
          eol.PYTHON_SIGNING_KEY["3.13"] or ""),
    Field("lock base image", _lock("bases", "bookworm", "image"),
          "zqmarker.test/library/debian:bookworm-slim"),
    Field("lock base digest", _lock("bases", "bookworm", "digest"), "sha256:" + "fedcba9876543210" * 4),
    Field("lock pyenv url", _both(("sources", "pyenv", "url"), ("pyenv", "url")),
          "https://zqmarker.test/pyenv.tar.gz"),
    Field("lock pyenv sha256", _lock("pyenv", "sha256"), "0123456789abcdef" * 4),
    Field("lock deadsnakes key_url", _both(("sources", "deadsnakes", "key_url"), ("deadsnakes", "key_url")),
          "https://zqmarker.test/key"),
]

# Characters that matter to a Dockerfile or a shell, often enough to get past the grammars.
_NASTY = st.sampled_from(list(" \t\n\r;&|<>()$`\"'\\#*?[]{}~=:/.,@%+-_!^") + ["$(id)", "${X}", "<<EOF",
                                                                            "\\\n", "\nRUN id\n"])
VALUES = st.one_of(
    st.text(max_size=24),
    st.lists(st.one_of(_NASTY, st.text("abcXYZ019", min_size=1, max_size=3)), max_size=10).map("".join),
)


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Data, yamlsafe.Lines, Data]:
    root = tmp_path_factory.mktemp("features")
    shutil.copytree(FIXTURES / "features", root, dirs_exist_ok=True)
    cfg, lines = loader.parse_yaml((root / "images.yaml").read_text(), str(root / "images.yaml"))
    lock, _ = yamlsafe.parse((root / "images.lock").read_text(), str(root / "images.lock"))
    return root / "images.yaml", cfg, lines, lock


def _render(features: tuple[Path, Data, yamlsafe.Lines, Data], field: Field, value: str) -> dict[str, str]:
    path, cfg0, lines, lock0 = features
    cfg, lock = copy.deepcopy(cfg0), copy.deepcopy(lock0)
    field.set(cfg, lock, value)
    loaded = loader.validate_data(cfg, path, TODAY, lines)
    lock_lines = yamlsafe.Lines()
    raise_all(checks.check(lock, lock_lines, "images.lock"))
    files = render.render_all(loaded, Lock.from_dict(lock))
    return {str(rel): data.decode() for rel, data in files.items() if rel.name == "Dockerfile"}


_HARMLESS: dict[str, dict[str, str]] = {}


def _words(instruction: str) -> list[str]:
    found = words(instruction)
    # ENV and LABEL pairs are sorted by key: their order is not what is being tested.
    return sorted(found) if found[:1] in (["ENV"], ["LABEL"]) else found


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
@example(value="curl; touch /pwned")
@example(value="x\nRUN id")
@example(value="$(id)`id`${HOME}")
@example(value='a "b" \\c $d')
@example(value="--opt=$(id) <<EOF")
def test_a_value_is_refused_or_stays_in_its_word(
    features: tuple[Path, Data, yamlsafe.Lines, Data], field: Field, value: str
) -> None:
    assume(value or not field.empty_is_absent)
    if field.name not in _HARMLESS:
        _HARMLESS[field.name] = _render(features, field, field.harmless)
    harmless = _HARMLESS[field.name]
    try:
        hostile = _render(features, field, value)
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.BAD_INPUT
        assert all("\n" not in line and line for line in exc.lines())
        return
    assert hostile.keys() == harmless.keys()
    before, after = field.rendered(field.harmless), field.rendered(value)
    for name, text in harmless.items():
        expected = [instructions(text), instructions(hostile[name])]
        assert len(expected[0]) == len(expected[1]), f"{name}: instruction count changed"
        for good, got in zip(*expected, strict=True):
            if good == got:  # holds no value of this field
                continue
            want = [w.replace(before, after) for w in words(good)]
            assert _words(got) == (sorted(want) if want[:1] in (["ENV"], ["LABEL"]) else want), got


def test_the_reader_sees_injection() -> None:
    """The checker itself: what the property would catch, if a template forgot to quote."""
    assert len(instructions("RUN a \\\n  b\nRUN c <<EOF\nRUN x\nEOF\nENV A=1\n")) == 3
    assert words("RUN apt-get install curl; touch /pwned") == [
        "RUN", "apt-get", "install", "curl", ";", "touch", "/pwned"]
    assert words('RUN pip install "$(id)"') != words('RUN pip install "\\$(id)"')
    assert words('ENV A="x \\"y\\" \\$z"') == ["ENV", 'A=x "y" $z']
    assert words("RUN echo 'a'\"'\"'b'") == ["RUN", "echo", "a'b"]


# Fields whose templates quote them (quoting.py): even with their grammar checks switched off,
# a value cannot leave its word (the second line of defence).
QUOTED = [f for f in FIELDS if f.name in {
    "packages.runtime", "packages.dev", "env value", "label value", "sources.pypi",
    "pythons[0].configure_opts", "profiles.release.configure_opts",
    "profiles.release.cflags", "dev_tools",
}]


@pytest.mark.parametrize("field", QUOTED, ids=[f.name for f in QUOTED])
@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
@example(value="curl; touch /pwned")
@example(value="$(id)`id`${HOME}")
def test_quoting_alone_keeps_a_value_in_its_word(
    features: tuple[Path, Data, yamlsafe.Lines, Data], field: Field, value: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(values, "check", lambda loaded: [])
    test_a_value_is_refused_or_stays_in_its_word.hypothesis.inner_test(features, field, value)
