# Base-image orchestrator: developer entry points. `make help` lists them.
PY ?= .venv/bin/python
# the interpreter .venv is made from (.ci/run: Debian 12's /usr/bin/python3, 3.11.2)
PYTHON ?= python3
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: help install lint typecheck test test-full test-unit test-e2e render-check provision demo bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.venv/bin/python:
	$(PYTHON) -m venv .venv

install: .venv/bin/python ## create .venv and install the package with dev tools
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'

lint: ## ruff, mypy --strict, hadolint on the generated Dockerfiles, render --check
	$(PY) -m ruff check orchestrator hostkit tests bench
	$(PY) -m mypy
	$(PY) -m orchestrator validate
	$(PY) -m orchestrator render --check
	.venv/bin/hadolint generated/*/Dockerfile
	.venv/bin/shellcheck -x stages/scripts/*.sh stages/minimal/*.sh scripts/*.sh \
		orchestrator/smoke/checks/*.sh

typecheck:
	$(PY) -m mypy

test: install lint ## everything CI runs: lint, unit tests (first, fast), provision, the real-grype and e2e tests
	$(PY) -m pytest -m "not docker and not grype" -q -x --durations=10
	ORCH_BASE_SUITES="bookworm noble" ORCH_ARM64_SUITES=bookworm bash scripts/provision-host.sh
	$(PY) -m pytest -m "docker or grype" -q --durations=30

test-full: install lint provision ## `make test` plus the cells CI leaves out for time (trixie, resolute amd64 + arm64)
	ORCH_E2E_FULL=1 $(PY) -m pytest -q

test-unit: ## unit tests only (no Docker needed, seconds)
	$(PY) -m pytest -m "not docker and not grype" -q

test-e2e: ## integration + e2e only: real dockerd, BuildKit, registry (after `make provision`)
	$(PY) -m pytest -m docker -q

provision: install ## turn this Debian 12 machine into a build host (dockerd, buildx, registry, mirror, cosign, the pinned syft and grype)
	bash scripts/provision-host.sh

E2E := tests/e2e/images.yaml

demo: install provision ## the main job on the built-in default: lock, render, build, test, push, sign, verify
	PY=$(PY) bash scripts/demo.sh

bench: ## benchmarks (size, start-up, speed, rebuild cost, overhead) -> bench/results.json
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf .orchestrator .pytest_cache .mypy_cache .ruff_cache
