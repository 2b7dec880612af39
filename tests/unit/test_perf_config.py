"""images.yaml's perf: section (issue 33 item 4): off by default, every problem one line with the
file, the key and the fix, and the workload names the same as the files the orchestrator ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import loader
from orchestrator.config.publish import WORKLOADS, Perf
from orchestrator.errors import ConfigError, ConfigProblems
from tests.unit.helpers import FIXTURES, TODAY


def _config(tmp_path: Path, perf_yaml: str) -> Path:
    cfg = tmp_path / "images.yaml"
    cfg.write_text((FIXTURES / "minimal.yaml").read_text() + perf_yaml)
    return cfg


def _problems(cfg: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loader.load(cfg, TODAY)
    err = info.value
    return err.lines() if isinstance(err, ConfigProblems) else [str(err)]


def test_without_a_perf_section_nothing_is_measured(tmp_path: Path) -> None:
    loaded = loader.load(_config(tmp_path, ""), TODAY)
    assert loaded.config.perf == Perf()
    assert not loaded.config.perf.enabled
    assert (loaded.config.perf.rounds, loaded.config.perf.max_slowdown) == (3, 1.05)
    assert loaded.config.perf.workloads == ()  # all of them


def test_a_perf_section_is_read_into_a_frozen_model(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "perf:\n  enabled: true\n  rounds: 5\n  max_slowdown: 1.08\n"
                  "  workloads: [nbody, json_roundtrip]\n")
    loaded = loader.load(cfg, TODAY)
    assert loaded.config.perf == Perf(enabled=True, rounds=5, max_slowdown=1.08,
                                      workloads=("nbody", "json_roundtrip"))
    # without signing the figures have nowhere to be attested: said, not refused
    assert any("perf: enabled without signing" in w for w in loaded.warnings)


def test_an_unknown_key_and_an_unknown_workload_say_what_was_meant(tmp_path: Path) -> None:
    lines = _problems(_config(tmp_path, "perf:\n  enabld: true\n  workloads: [nbody, nbdy]\n"))
    cfg = tmp_path / "images.yaml"
    assert f"{cfg}:53: perf.enabld: unknown key; did you mean \"enabled\"?" in lines
    bad = [ln for ln in lines if "perf.workloads[1]" in ln]
    assert len(bad) == 1 and bad[0].startswith(f"{cfg}:54: ")
    assert bad[0].endswith('did you mean "nbody"?')


@pytest.mark.parametrize(("yaml", "key", "fix"), [
    ("perf: {max_slowdown: 1.0}\n", "perf.max_slowdown",
     "1 refuses an image for being as fast as the published one"),
    ("perf: {max_slowdown: 5}\n", "perf.max_slowdown", "5 lets through an image more than twice"),
    ("perf: {workloads: [nbody, nbody]}\n", "perf.workloads[1]", "nbody is listed twice"),
    ("perf: {rounds: 1}\n", "perf.rounds", "greater than or equal to 2"),
    ("perf: {values: 0}\n", "perf.values", "greater than or equal to 1"),
    ("perf: {enabled: maybe}\n", "perf.enabled", "valid boolean"),
])
def test_a_bad_value_is_one_line_naming_the_file_and_key(tmp_path: Path, yaml: str, key: str,
                                                         fix: str) -> None:
    lines = _problems(_config(tmp_path, yaml))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 'images.yaml'}:52: {key}: "), lines[0]
    assert fix in lines[0]
    assert "\n" not in lines[0]


def test_the_max_slowdown_fix_says_what_to_write(tmp_path: Path) -> None:
    (line,) = _problems(_config(tmp_path, "perf: {max_slowdown: 0.95}\n"))
    assert line.endswith("write a factor between 1 and 2 above the noise, e.g. 1.05 (refuse an "
                         "image more than 5 % slower than the one it replaces)")


def test_every_problem_of_the_section_is_reported_at_once(tmp_path: Path) -> None:
    lines = _problems(_config(tmp_path, "perf: {max_slowdown: 3, workloads: [nbody, nbody]}\n"))
    assert [ln.split(": ")[1] for ln in lines] == ["perf.max_slowdown", "perf.workloads[1]"]


def test_the_workload_names_are_the_files_the_package_ships() -> None:
    shipped = Path(__file__).resolve().parents[2] / "orchestrator" / "perf" / "workloads"
    names = sorted(p.stem for p in shipped.glob("*.py") if p.stem not in ("runner", "__init__"))
    assert tuple(names) == WORKLOADS
    for name in names:  # each module's NAME is its file name: the runner selects by it
        assert f'NAME = "{name}"' in (shipped / f"{name}.py").read_text()
