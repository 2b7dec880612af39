""".gitlab-ci.yml: valid against GitLab's schema (offline), and its rules do what the three
pipelines promise: the merge-request pipeline never publishes, the schedule runs `nightly`
on every shard and one report job waits for all of them, a release is manual and only
follows a change of images.yaml / images.lock, and the shard count is the same everywhere.

The rules are evaluated by a small interpreter of exactly the constructs the file uses
(`if` with ==/!= and &&, `changes`, `when`); anything else makes the tests fail rather than
be silently misread.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import cli, settings
from orchestrator.config import loader
from orchestrator.planning import build_cache
from orchestrator.planning.build_cache import CellCache
from orchestrator.release.report import Report, Status
from tests import require
from tests.require import require_tool
from tests.unit.helpers import REPO, TODAY

CI_FILE = REPO / ".gitlab-ci.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
GLOBAL_KEYS = {"stages", "workflow", "variables", "default", "include", "image", "services",
               "cache", "before_script", "after_script"}
PIPELINE_COMMAND = re.compile(r"-m orchestrator (build|test|push|release|nightly)\b")
PUBLISHING = re.compile(r"-m orchestrator (push|release|nightly)\b")
SHARD = re.compile(r"--shard[ =](\S+)")
PER_SHARD = '"$CI_NODE_INDEX/$CI_NODE_TOTAL"'


# --------------------------------------------------------------------------- loading


def _raw() -> dict[str, Any]:
    data = yaml.safe_load(CI_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """GitLab's `extends` merge: mappings merge deeply, everything else (lists too) is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(data: dict[str, Any], name: str, depth: int = 0) -> dict[str, Any]:
    assert depth < 11, f"{name}: `extends` nests too deep (GitLab allows 11 levels)"
    job = data[name]
    parents = job.get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    out: dict[str, Any] = {}
    for parent in parents:
        assert parent in data, f"{name} extends unknown {parent}"
        out = _merge(out, _resolve(data, parent, depth + 1))
    out = _merge(out, {k: v for k, v in job.items() if k != "extends"})
    return out


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return _raw()


@pytest.fixture(scope="module")
def jobs(ci: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = [k for k in ci if k not in GLOBAL_KEYS and not k.startswith(".")]
    return {n: _resolve(ci, n) for n in names}


def _flatten(items: Any) -> list[str]:
    if items is None:
        return []
    if isinstance(items, str):
        return [items]
    return [line for item in items for line in _flatten(item)]


def _commands(job: dict[str, Any]) -> str:
    return "\n".join(_flatten(job.get("before_script")) + _flatten(job.get("script"))
                     + _flatten(job.get("after_script")))


def _variables(ci: dict[str, Any], job: dict[str, Any], **extra: str) -> dict[str, str]:
    return {**{k: str(v) for k, v in ci.get("variables", {}).items()},
            **{k: str(v) for k, v in job.get("variables", {}).items()}, **extra}


def _expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(5):  # variables may refer to variables
        text = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)
    return text


def _pipeline_commands(job: dict[str, Any]) -> list[str]:
    """Every orchestrator build/test/push/release/nightly command line of a job."""
    lines = _commands(job).replace("\\\n", " ").splitlines()
    return [line for line in lines if PIPELINE_COMMAND.search(line)]


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Pipeline:
    source: str
    branch: str | None = None  # CI_COMMIT_BRANCH: unset in merge-request pipelines
    changed: frozenset[str] = field(default_factory=frozenset)
    default_branch: str = "main"

    @property
    def env(self) -> dict[str, str | None]:
        return {"CI_PIPELINE_SOURCE": self.source, "CI_COMMIT_BRANCH": self.branch,
                "CI_DEFAULT_BRANCH": self.default_branch}


MR = Pipeline("merge_request_event", changed=frozenset({"images.yaml", "images.lock"}))
SCHEDULE = Pipeline("schedule", "main")
PUSH_MAIN_LOCK = Pipeline("push", "main", frozenset({"images.lock"}))
PUSH_MAIN_YAML = Pipeline("push", "main", frozenset({"images.yaml", "README.md"}))
PUSH_MAIN_OTHER = Pipeline("push", "main", frozenset({"README.md", "orchestrator/cli.py"}))
PUSH_BRANCH = Pipeline("push", "feature", frozenset({"images.yaml"}))
EVERY_PIPELINE = (MR, SCHEDULE, PUSH_MAIN_LOCK, PUSH_MAIN_YAML, PUSH_MAIN_OTHER, PUSH_BRANCH)

_CLAUSE = re.compile(r'^\$(\w+) (==|!=) (?:"([^"]*)"|\$(\w+))$')


def _if(expr: str, env: dict[str, str | None]) -> bool:
    result = True
    for clause in expr.split("&&"):
        m = _CLAUSE.match(clause.strip())
        assert m, f"rule expression not understood by this test: {clause.strip()!r}"
        left = env.get(m.group(1))
        right = m.group(3) if m.group(3) is not None else env.get(m.group(4))
        result &= (left == right) if m.group(2) == "==" else (left != right)
    return result


def _changes(spec: Any, p: Pipeline) -> bool:
    paths = spec["paths"] if isinstance(spec, dict) else spec
    assert isinstance(paths, list) and paths, f"changes: {spec!r}"
    if p.source not in ("push", "merge_request_event"):
        return True  # GitLab: `changes` is always true without a Git push event
    return any(fnmatch.fnmatch(f, pattern) for f in p.changed for pattern in paths)


def _when(rules: list[dict[str, Any]], p: Pipeline, where: str) -> str | None:
    """The `when` of the first matching rule (None: not in this pipeline)."""
    for rule in rules:
        unknown = set(rule) - {"if", "changes", "when", "allow_failure", "variables"}
        assert not unknown, f"{where}: rule keys not understood by this test: {unknown}"
        if "if" in rule and not _if(rule["if"], p.env):
            continue
        if "changes" in rule and not _changes(rule["changes"], p):
            continue
        when = str(rule.get("when", "on_success"))
        return None if when == "never" else when
    return None


def _pipeline(ci: dict[str, Any], jobs: dict[str, dict[str, Any]], p: Pipeline) -> dict[str, str]:
    """job name -> when, for the jobs GitLab would create in pipeline ``p``."""
    if _when(ci["workflow"]["rules"], p, "workflow") is None:
        return {}
    out = {}
    for name, job in jobs.items():
        assert "rules" in job, f"{name}: no rules (it would run in every pipeline)"
        when = _when(job["rules"], p, name)
        if when is not None:
            out[name] = when
    return out


def _parallel(job: dict[str, Any]) -> int:
    value = job.get("parallel", 1)
    assert isinstance(value, int), f"parallel: {value!r} (this file uses a plain count)"
    return value


def _instances(name: str, job: dict[str, Any]) -> set[str]:
    """The jobs GitLab creates for ``name``: `name I/N` for parallel jobs."""
    n = _parallel(job)
    return {f"{name} {i}/{n}" for i in range(1, n + 1)} if n > 1 else {name}


def _needs(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"job": n} if isinstance(n, str) else n for n in job.get("needs", [])]


# --------------------------------------------------------------------------- schema


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = require_tool("check-jsonschema", require.DEV_EXTRA, path=CHECK_JSONSCHEMA)
    return subprocess.run(
        [exe, "--builtin-schema", "vendor.gitlab-ci",
         "--data-transform", "gitlab-ci", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _schema_problems(ci_file: Path, workdir: Path) -> list[str]:
    """check-jsonschema on the file as written and on its jobs with `extends` merged in.

    The schema treats hidden keys (.templates) as arbitrary YAML and does not follow
    `extends`, so a mistake inside a template is only caught on the resolved jobs.
    """
    data = yaml.safe_load(ci_file.read_text(encoding="utf-8"))
    resolved = {k: v for k, v in data.items() if k in GLOBAL_KEYS}
    resolved |= {k: _resolve(data, k) for k in data if k not in GLOBAL_KEYS and not k.startswith(".")}
    flat = workdir / "resolved.gitlab-ci.yml"
    flat.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    problems = []
    for path in (ci_file, flat):
        res = _check_jsonschema(path)
        if res.returncode != 0 or "ok -- validation done" not in res.stdout:
            problems.append(f"{path.name}: {res.stdout}{res.stderr}")
    return problems


@pytest.mark.spawns("check-jsonschema")
def test_schema_valid_with_the_vendored_gitlab_schema(tmp_path: Path) -> None:
    """Uses the schema vendored inside check-jsonschema: no network needed."""
    assert _schema_problems(CI_FILE, tmp_path) == []


@pytest.mark.spawns("check-jsonschema")
@pytest.mark.parametrize(("old", "new"), [
    ("  parallel: 4 ", "  parallel: four "),                    # in a template
    ("      when: manual\n", "      when: sometimes\n"),       # in a rule
    ("  stage: check\n  script:\n    - $PY -m orchestrator validate\n",
     "  stage: check\n  scirpt:\n    - $PY -m orchestrator validate\n"),  # a job keyword
])
def test_schema_check_rejects_a_broken_copy(tmp_path: Path, old: str, new: str) -> None:
    """The validation really validates: the same file with one mistake fails."""
    text = CI_FILE.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"expected exactly one {old!r} in .gitlab-ci.yml"
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(text.replace(old, new), encoding="utf-8")
    assert _schema_problems(broken, tmp_path)


# --------------------------------------------------------------------------- shape


def test_every_job_has_rules_and_every_stage_exists(ci: dict[str, Any],
                                                    jobs: dict[str, dict[str, Any]]) -> None:
    for name, job in jobs.items():
        assert job.get("rules"), f"{name} has no rules"
        assert job.get("stage", "test") in ci["stages"], f"{name}: unknown stage"
        assert _flatten(job.get("script")), f"{name} has no script"
    # Every pipeline is created only where intended (the evaluator also proves the rules parse).
    for p in EVERY_PIPELINE:
        _pipeline(ci, jobs, p)
    assert _pipeline(ci, jobs, PUSH_BRANCH) == {}, "a plain branch push must not create a pipeline"


def test_shard_expressions_match_parallel(ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    sharded = {}
    for name, job in jobs.items():
        for line in _pipeline_commands(job):
            shards = SHARD.findall(line)
            assert shards, f"{name}: `{line.strip()}` runs without --shard"
            for expr in shards:
                n = _parallel(job)
                assert n > 1, f"{name}: --shard {expr} but the job is not parallel"
                if expr != PER_SHARD:
                    m = re.fullmatch(r"(\d+)/(\d+)", expr)
                    assert m and int(m.group(2)) == n, f"{name}: --shard {expr} vs parallel: {n}"
                sharded[name] = n
            report = re.search(r'--report "([^"]+)"', line)
            assert report and "$CI_NODE_INDEX" in report.group(1), \
                f"{name}: each shard needs its own --report file"
    assert {"build:fast", "nightly", "release"} <= set(sharded)
    assert set(sharded.values()) == {int(ci["variables"]["SHARDS"])}, \
        f"parallel counts {sharded} differ from SHARDS={ci['variables']['SHARDS']}"


def test_profile_variable_names_the_profile_built(jobs: dict[str, dict[str, Any]]) -> None:
    """ORCH_PROFILE only names the cache ref; it must agree with the --profile really built."""
    for name, job in jobs.items():
        for line in _pipeline_commands(job):
            profile = re.search(r"--profile (\S+)", line)
            assert profile, f"{name}: `{line.strip()}` has no explicit --profile"
            assert job["variables"]["ORCH_PROFILE"] == profile.group(1), name


# --------------------------------------------------------------------------- the three pipelines


def test_merge_request_pipeline_checks_and_builds_but_never_publishes(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    mr = _pipeline(ci, jobs, MR)
    assert set(mr) == {"validate", "render-check", "lint", "unit-tests", "build:fast"}
    for name in mr:
        text = _commands(jobs[name])
        assert not PUBLISHING.search(text), f"{name} publishes in a merge-request pipeline"
        assert "--all-or-nothing" not in text and "docker push" not in text, name
        assert "PUBLISH_REGISTRY" not in text, f"{name} logs in to the publish registry"
    assert "-m orchestrator validate" in _commands(jobs["validate"])
    assert "-m orchestrator render --check" in _commands(jobs["render-check"])
    assert "make lint" in _commands(jobs["lint"])
    lint_recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert lint_recipe and "hadolint" in lint_recipe.group(1), "`make lint` must run hadolint"
    assert "make test-unit" in _commands(jobs["unit-tests"])
    build = _pipeline_commands(jobs["build:fast"])
    verbs = [m.group(1) for c in build if (m := re.search(r"-m orchestrator (\w+)", c))]
    assert verbs == ["build", "test"], build
    assert all("--profile fast" in c for c in build)


def test_unit_test_junit_is_collected(ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    job = jobs["unit-tests"]
    addopts = _expand(_variables(ci, job)["PYTEST_ADDOPTS"], _variables(ci, job))
    m = re.fullmatch(r"--junitxml=(\S+)", addopts)
    assert m, addopts
    assert fnmatch.fnmatch(m.group(1), job["artifacts"]["reports"]["junit"])
    assert job["artifacts"]["when"] == "always"


def test_schedule_runs_nightly_on_every_shard(ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    sched = _pipeline(ci, jobs, SCHEDULE)
    assert set(sched) == {"nightly", "nightly:report", "nightly:scan"}
    (cmd,) = _pipeline_commands(jobs["nightly"])
    assert "-m orchestrator nightly " in cmd and "--all-or-nothing" in cmd
    assert "--profile release" in cmd and PER_SHARD in cmd
    for name in sched:
        assert not re.search(r"-m orchestrator (release|push)\b", _commands(jobs[name])), name
    assert jobs["nightly"]["interruptible"] is False


@pytest.mark.parametrize(("pipeline", "shard_job", "report_job"), [
    (SCHEDULE, "nightly", "nightly:report"),
    (PUSH_MAIN_LOCK, "release", "release:report"),
])
def test_report_job_needs_every_shard(ci: dict[str, Any], jobs: dict[str, dict[str, Any]],
                                      pipeline: Pipeline, shard_job: str, report_job: str) -> None:
    created = _pipeline(ci, jobs, pipeline)
    shard_instances = set().union(*(_instances(n, jobs[n]) for n in created
                                    if PUBLISHING.search(_commands(jobs[n]))))
    assert shard_instances == _instances(shard_job, jobs[shard_job])
    assert len(shard_instances) == int(ci["variables"]["SHARDS"])
    report = jobs[report_job]
    needed: set[str] = set()
    for need in _needs(report):
        assert need.get("artifacts", True), f"{report_job} must download {need['job']}'s reports"
        needed |= _instances(need["job"], jobs[need["job"]])  # a need on a parallel job = all of it
    assert shard_instances <= needed, f"{report_job} does not wait for {shard_instances - needed}"
    assert created[report_job] == "always", "the report must also run (and fail) after a failed shard"
    kind = report["variables"]["REPORT_KIND"]
    (cmd,) = _pipeline_commands(jobs[shard_job])
    assert f'--report "$REPORT_DIR/{kind}-$CI_NODE_INDEX-of-$CI_NODE_TOTAL.json"' in cmd


def test_release_is_manual_and_only_for_lock_input_changes(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    releasing = {n for n, j in jobs.items() if re.search(r"-m orchestrator release\b", _commands(j))}
    assert releasing == {"release"}
    for p in (PUSH_MAIN_LOCK, PUSH_MAIN_YAML):
        created = _pipeline(ci, jobs, p)
        assert created["release:approve"] == "manual"
        assert {"release", "release:report", "validate", "lint"} <= set(created)
    for p in (MR, SCHEDULE, PUSH_MAIN_OTHER, PUSH_BRANCH):
        created = _pipeline(ci, jobs, p)
        assert not {"release:approve", "release", "release:report"} & set(created), p
    gate = jobs["release:approve"]
    assert gate.get("allow_failure") is False, "a manual gate that may fail does not block"
    assert {n["job"] for n in _needs(jobs["release"])} == {"release:approve"}
    assert {"validate", "render-check", "lint", "unit-tests"} <= {n["job"] for n in _needs(gate)}
    for name in ("release:approve", "release", "release:report"):
        for rule in jobs[name]["rules"]:
            assert rule["changes"] == ["images.yaml", "images.lock"], name
            assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rule["if"], name
    (cmd,) = _pipeline_commands(jobs["release"])
    assert "--profile release" in cmd and "--all-or-nothing" in cmd


# --------------------------------------------------------------------------- docker, login, artifacts


def test_engine_jobs_use_dind_with_tls(jobs: dict[str, dict[str, Any]]) -> None:
    for name, job in jobs.items():
        if not _pipeline_commands(job):
            continue
        services = [s if isinstance(s, str) else s["name"] for s in job["services"]]
        assert services == ["docker:26-dind"], name
        v = job["variables"]
        assert v["DOCKER_HOST"] == "tcp://docker:2376" and v["DOCKER_TLS_CERTDIR"] == "/certs"
        assert v["DOCKER_CERT_PATH"] == "$DOCKER_TLS_CERTDIR/client" and v["DOCKER_TLS_VERIFY"] == "1"


def test_registry_logins_use_password_stdin(jobs: dict[str, dict[str, Any]]) -> None:
    logins = [line for job in jobs.values() for line in _commands(job).splitlines()
              if "docker login" in line]
    assert logins
    for line in logins:
        assert "--password-stdin" in line and not re.search(r"\s(-p|--password)[\s=]", line), line


def test_reports_and_logs_are_kept(ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    for name, job in jobs.items():
        for line in _pipeline_commands(job):
            art = job["artifacts"]
            assert art["when"] == "always", name
            assert ".orchestrator/logs/" in art["paths"], name
            m = re.search(r'--report "([^"]+)\.json"', line)
            assert m, f"{name}: no --report FILE.json"
            report = _expand(m.group(1), _variables(ci, job, CI_NODE_INDEX="1", CI_NODE_TOTAL="4"))
            assert any(report.startswith(p.rstrip("/") + "/") for p in art["paths"]), name
            assert fnmatch.fnmatch(report + ".xml", art["reports"]["junit"]), name


# --------------------------------------------------------------------------- the shell snippets, run


def _shard_report(cells: dict[str, Status]) -> Report:
    report = Report("nightly", "release", TODAY.isoformat())
    for cell_id, status in cells.items():
        report.cell(cell_id).status = status
    return report


@pytest.mark.spawns("sh")
@pytest.mark.parametrize(("case", "expect_ok"), [
    ("all-ok", True),
    ("one-cell-failed", False),
    ("shard-missing", False),
    ("cell-in-two-shards", False),
])
def test_nightly_report_merge(tmp_path: Path, jobs: dict[str, dict[str, Any]],
                              case: str, expect_ok: bool) -> None:
    """Runs the report job's real script on shard reports written by orchestrator.release.report."""
    job = jobs["nightly:report"]
    shards = 4
    reports = {i: {f"3.1{i}-source-bookworm-runtime": Status.OK,
                   f"3.1{i}-source-bookworm-dev": Status.UNCHANGED} for i in range(1, shards + 1)}
    if case == "one-cell-failed":
        reports[3]["3.13-source-bookworm-dev"] = Status.FAILED
    if case == "cell-in-two-shards":
        reports[2]["3.11-source-bookworm-dev"] = Status.OK
    if case == "shard-missing":
        del reports[4]
    out_dir = tmp_path / ".orchestrator" / "reports"
    for i, cells in reports.items():
        _shard_report(cells).write_json(out_dir / f"nightly-{i}-of-{shards}.json")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "REPORT_KIND": job["variables"]["REPORT_KIND"], "SHARDS": str(shards),
           "REPORT_DIR": ".orchestrator/reports"}
    # the merge/judge step only; promote (which needs a registry) is checked separately
    script = "\n".join(s for s in _flatten(job["script"]) if "orchestrator promote" not in s)
    res = subprocess.run(["sh", "-ec", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert (res.returncode == 0) is expect_ok, res.stdout + res.stderr
    merged = json.loads((tmp_path / ".orchestrator" / "report-nightly.json").read_text())
    assert len(merged["shards"]) == len(reports)
    assert len(merged["cells"]) == sum(len(c) for c in reports.values())
    assert bool(merged["problems"]) is not expect_ok
    if case == "one-cell-failed":
        assert "FAILED: 3.13-source-bookworm-dev: failed" in res.stderr
    if case == "shard-missing":
        assert f"3 of {shards} shard reports found" in res.stderr


@pytest.mark.parametrize("kind", ["nightly", "release"])
def test_shards_only_stage_and_the_report_job_promotes_once(jobs: dict[str, dict[str, Any]],
                                                            kind: str) -> None:
    """Shards push by digest only; public tags move in one job, after the merge passed."""
    shard_script = " ".join(_flatten(jobs[kind]["script"]))
    assert f"orchestrator {kind}" in shard_script and "--stage-only" in shard_script
    steps = _flatten(jobs[f"{kind}:report"]["script"])
    promote = [i for i, s in enumerate(steps) if "orchestrator promote" in s]
    merge = [i for i, s in enumerate(steps) if "shard reports found" in s]
    assert len(promote) == 1 and merge and merge[0] < promote[0]
    assert "--all-or-nothing" in steps[promote[0]]
    assert "$REPORT_KIND-*-of-*.json" in steps[promote[0]]


def _rule_variables(job: dict[str, Any], p: Pipeline) -> dict[str, str]:
    """The `variables:` of the first rule of ``job`` that matches pipeline ``p``."""
    for rule in job["rules"]:
        if "if" in rule and not _if(rule["if"], p.env):
            continue
        if "changes" in rule and not _changes(rule["changes"], p):
            continue
        return {k: str(v) for k, v in rule.get("variables", {}).items()}
    return {}


def _cache_of(ci: dict[str, Any], job: dict[str, Any], p: Pipeline, cell: str) -> CellCache:
    """Parse the job's orchestrator command line with the orchestrator's own parser and
    resolve the cache refs of one cell as the run would (CI=true, images.yaml's build.cache)."""
    variables = _variables(ci, job, CI_REGISTRY_IMAGE="registry.test/g/p", CI_NODE_INDEX="1",
                           CI_NODE_TOTAL="4", CI_PIPELINE_ID="7", REPORT_DIR="r",
                           **_rule_variables(job, p))
    line = _expand(_pipeline_commands(job)[0], variables)
    argv = shlex.split(line.split("-m orchestrator", 1)[1].split(" || ")[0])
    args = cli.parser().parse_args(argv)
    loaded = loader.load(REPO / "images.yaml", TODAY)
    profile = args.profile or loaded.config.default_profile
    return build_cache.for_cell(loaded.config, cell, "bookworm", profile, ci=True,
                              options=build_cache.options_from(args))


CELL = "3.13-source-bookworm-runtime"


def test_merge_requests_read_the_default_branch_cache_and_never_write(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    mr = _cache_of(ci, jobs["build:fast"], MR, CELL)
    main = _cache_of(ci, jobs["build:fast"], PUSH_MAIN_OTHER, CELL)
    ref = f"registry.test/g/p/cache:fast-{CELL}"
    assert mr == CellCache((ref,), None, "max")
    assert main.read == (ref,) and main.write == ref, "the default branch keeps the MR cache warm"
    assert "build:fast" in _pipeline(ci, jobs, PUSH_MAIN_OTHER)


@pytest.mark.parametrize(("job", "pipeline"), [("nightly", SCHEDULE), ("release", PUSH_MAIN_LOCK)])
def test_publishing_shards_import_and_export_their_cells_cache(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]], job: str, pipeline: Pipeline) -> None:
    cache = _cache_of(ci, jobs[job], pipeline, CELL)
    ref = f"registry.test/g/p/cache:release-{CELL}"
    assert cache.read == (ref,) and cache.write == ref
    assert cache.cache_to() == [f"type=registry,ref={ref},mode=max"]
    other = _cache_of(ci, jobs[job], pipeline, "3.12-source-bookworm-dev")
    assert other.write != cache.write, "two cells must never export to one ref"


def test_dind_runs_on_the_containerd_image_store(jobs: dict[str, dict[str, Any]]) -> None:
    for name in ("build:fast", "nightly", "release"):
        service = jobs[name]["services"][0]
        entry = " ".join(service["entrypoint"])
        assert '{"features": {"containerd-snapshotter": true}}' in entry, name
        assert "exec dockerd-entrypoint.sh" in entry, name
        assert "io.containerd.snapshotter" in _commands(jobs[name]), \
            f"{name} must fail early on a dind without the containerd store"


# --------------------------------------------------------------------------- schedule: the scan


def _scan_command(ci: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """The job's `orchestrator scan` command line, variables filled in, as argv."""
    lines = [line for line in _commands(job).splitlines() if "-m orchestrator scan" in line]
    assert len(lines) == 1, lines
    line = _expand(lines[0], _variables(ci, job, CI_PROJECT_DIR="/builds/g/p"))
    return shlex.split(line.split("-m orchestrator", 1)[1])


def test_the_nightly_scan_runs_after_the_promote_on_schedules_only(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    job = jobs["nightly:scan"]
    for p in EVERY_PIPELINE:
        assert ("nightly:scan" in _pipeline(ci, jobs, p)) is (p == SCHEDULE), p
    # also after a failed nightly (what is published is scanned either way)
    assert _pipeline(ci, jobs, SCHEDULE)["nightly:scan"] == "always"
    assert _needs(job) == [{"job": "nightly:report", "artifacts": False}]
    stages = ci["stages"]
    assert stages.index(job["stage"]) > stages.index(jobs["nightly:report"]["stage"])
    assert job["interruptible"] is False
    # a finding that gates on a published image is a warning; a scanner or DB error (3) fails
    assert job["allow_failure"] == {"exit_codes": [1]}
    assert not PUBLISHING.search(_commands(job)) and "promote" not in _commands(job)


def test_the_nightly_scan_command_line_is_the_clis_and_its_reports_are_kept(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    job = jobs["nightly:scan"]
    args = cli.parser().parse_args(_scan_command(ci, job))  # exits (fails) on an unknown option
    assert args.command == "scan" and args.config == ci["variables"]["ORCH_CONFIG"]
    assert args.only is None and args.fail_on is None  # every image, images.yaml's gate
    art = job["artifacts"]
    assert art["when"] == "always"
    for out in (args.json, args.gitlab_report):
        assert out and any(out.startswith(p.rstrip("/") + "/") for p in art["paths"]), out
    assert art["reports"]["container_scanning"] == args.gitlab_report


def test_the_nightly_scan_builds_the_pinned_grype_once_per_runner_and_keeps_its_ledger(
        ci: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    job = jobs["nightly:scan"]
    steps = _flatten(job["script"])
    install = [i for i, s in enumerate(steps) if s.strip() == "scripts/install-go-tools.sh grype"]
    scan = [i for i, s in enumerate(steps) if "-m orchestrator scan" in s]
    assert install and scan and install[0] < scan[0]
    caches = {json.dumps(c["key"], sort_keys=True): c for c in job["cache"]}
    # the tools dir the script builds into is the one the orchestrator runs grype from, and
    # it is cached under a key that changes with the pins
    env = _variables(ci, job, CI_PROJECT_DIR="/builds/g/p")
    tools = Path(_expand(env["ORCH_TOOLS_DIR"], env))
    assert settings.Settings.from_environ({"ORCH_TOOLS_DIR": str(tools)}).tools_dir == tools
    tools_cache = [c for c in caches.values() if isinstance(c["key"], dict)
                   and c["key"].get("files") == ["tools/go-tools.txt"]]
    assert len(tools_cache) == 1
    assert [f"/builds/g/p/{p.rstrip('/')}" for p in tools_cache[0]["paths"]] == [str(tools)]
    # scan-first-seen.json (the ledger that marks findings new since the previous night) lives
    # in the work dir, relative to images.yaml's directory (the checkout): kept between nights,
    # also when the job fails
    ledger = str(settings.Settings.from_environ({}).work_dir / "scan-first-seen.json")
    kept = [c for c in caches.values() if ledger in c["paths"]]
    assert len(kept) == 1 and kept[0]["when"] == "always"
    assert "ORCH_WORK_DIR" not in env
    assert (REPO / "tools" / "go-tools.txt").read_text().count("\ngrype ") == 1


@pytest.mark.spawns("sh")
@pytest.mark.parametrize("has_scan", [False, True])
def test_the_nightly_scan_passes_with_a_note_while_images_yaml_pins_no_db(
        tmp_path: Path, jobs: dict[str, dict[str, Any]], has_scan: bool) -> None:
    """Runs the job's real first step on a config without and with a scan: section."""
    cfg = tmp_path / "images.yaml"
    cfg.write_text("publish: {registry: registry.test, repository: org/python}\n"
                   + ("scan:\n  db: {file: db.tar.gz, sha256: '0'}\n" if has_scan else ""))
    (step,) = [s for s in _flatten(jobs["nightly:scan"]["script"]) if "has_scan=" in s]
    env = {**os.environ, "PY": sys.executable, "ORCH_CONFIG": str(cfg)}
    res = subprocess.run(["sh", "-ec", step + "\necho went-on"], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert ("went-on" in res.stdout) is has_scan
    assert ("has no scan: section" in res.stdout) is not has_scan
