"""scripts/install-go-tools.sh (issue 32, item 8): the Go tools pinned in tools/go-tools.txt are
built once per machine into a directory the project owns, a binary built from the pinned
module version is kept, anything else there is rebuilt, and bin/NAME points at the pin.

``go`` is a stand-in (GO=...): ``go install -ldflags ... PKG@VERSION`` writes a script into
$GOBIN that remembers what it was built from, ``go version -m BIN`` prints that as ``mod`` line
the way the real go prints a binary's build info. It counts its installs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.unit.helpers import REPO

SCRIPT = REPO / "scripts" / "install-go-tools.sh"
PINS = REPO / "tools" / "go-tools.txt"

FAKE_GO = r"""#!/bin/bash
set -euo pipefail
case "$1" in
install)
    shift
    [[ $1 == -ldflags ]] && { echo "$2" >>"$FAKE_STATE/ldflags"; shift 2; }
    pkg=${1%@*} version=${1#*@}
    [[ -e $FAKE_STATE/fail ]] && { echo "go: module lookup disabled" >&2; exit 1; }
    echo "$pkg@$version" >>"$FAKE_STATE/installs"
    name=${pkg##*/} module=${pkg%/cmd/*}
    printf '#!/bin/sh\n# built from: %s %s\necho %s\n' "$module" "$version" "$name" >"$GOBIN/$name"
    chmod +x "$GOBIN/$name"
    ;;
version)
    [[ $2 == -m ]] || exit 2
    line=$(grep -m1 '^# built from: ' "$3" 2>/dev/null) || { echo "$3: not a Go binary" >&2; exit 1; }
    read -r module version <<<"${line#\# built from: }"
    printf '%s: go1.26.8\n\tpath\t%s/cmd/x\n\tmod\t%s\t%s\th1:abc=\n' "$3" "$module" "$module" "$version"
    ;;
env) echo "https://proxy.golang.org,direct" ;;
*) exit 2 ;;
esac
"""


def pins() -> dict[str, tuple[str, str]]:
    out = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, pkg, version = line.split()
            out[name] = (pkg, version)
    return out


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    go = tmp_path / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {"PATH": os.environ["PATH"], "GO": str(go), "FAKE_STATE": str(state),
            "ORCH_TOOLS_DIR": str(tmp_path / "tools")}


def run(env: dict[str, str], *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *names], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def installs(env: dict[str, str]) -> list[str]:
    f = Path(env["FAKE_STATE"]) / "installs"
    return f.read_text().split() if f.exists() else []


def test_the_pins_are_grype_and_syft_at_exact_versions() -> None:
    p = pins()
    assert set(p) == {"grype", "syft"}
    for name, (pkg, version) in p.items():
        assert pkg.endswith(f"/cmd/{name}") and re.fullmatch(r"v\d+\.\d+\.\d+", version)
    # the tests' DB writer links the same grype (it must write the schema this grype reads)
    gomod = (REPO / "tools" / "vulndb" / "go.mod").read_text()
    assert f"github.com/anchore/grype {p['grype'][1]}\n" in gomod


@pytest.mark.spawns("bash")
def test_builds_each_pin_once_then_skips(env: dict[str, str]) -> None:
    first = run(env)
    assert first.returncode == 0, first.stderr
    want = [f"{pkg}@{version}" for pkg, version in pins().values()]
    assert installs(env) == want
    tools = Path(env["ORCH_TOOLS_DIR"])
    for name, (_, version) in pins().items():
        assert (tools / f"{name}-{version}" / name).is_file()
        assert str((tools / "bin" / name).readlink()) == f"../{name}-{version}/{name}"
        assert f"built {name} {version} in " in first.stdout
    ldflags = (Path(env["FAKE_STATE"]) / "ldflags").read_text().split("\n")
    assert ldflags[0] == f"-X main.version={pins()['grype'][1].removeprefix('v')}"
    again = run(env)
    assert again.returncode == 0, again.stderr
    assert installs(env) == want  # nothing built the second time
    assert again.stdout.count("skip: ") == len(want)


@pytest.mark.spawns("bash")
def test_a_binary_of_another_version_is_rebuilt(env: dict[str, str]) -> None:
    pkg, version = pins()["grype"]
    stale = Path(env["ORCH_TOOLS_DIR"]) / f"grype-{version}" / "grype"
    stale.parent.mkdir(parents=True)
    stale.write_text("#!/bin/sh\n# built from: github.com/anchore/grype v0.1.0\n")
    stale.chmod(0o755)
    result = run(env, "grype")
    assert result.returncode == 0, result.stderr
    assert "built from 'github.com/anchore/grype v0.1.0'" in result.stdout
    assert installs(env) == [f"{pkg}@{version}"]
    assert f"github.com/anchore/grype {version}" in stale.read_text()


@pytest.mark.spawns("bash")
def test_a_failed_build_leaves_nothing_and_says_why(env: dict[str, str]) -> None:
    (Path(env["FAKE_STATE"]) / "fail").touch()
    result = run(env, "syft")
    assert result.returncode == 1
    assert "go install github.com/anchore/syft/cmd/syft@" in result.stderr
    assert "GOPROXY=https://proxy.golang.org,direct" in result.stderr
    tools = Path(env["ORCH_TOOLS_DIR"])
    assert not list(tools.glob("syft-*")) and not list(tools.glob(".build-*"))


@pytest.mark.spawns("bash")
def test_an_unknown_name_is_refused(env: dict[str, str]) -> None:
    result = run(env, "trivy")
    assert result.returncode == 1
    assert "trivy: not in" in result.stderr and "it has: grype syft" in result.stderr
    assert installs(env) == []
