"""Smoke checks per platform and the hardening policy, without Docker."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from orchestrator.config.model import Loaded
from orchestrator.lock.lockfile import Lock
from orchestrator.planning import plan
from orchestrator.smoke import app as smoke_app
from orchestrator.smoke import elf, suite
from orchestrator.smoke import hardening as smoke_hardening
from tests import require
from tests.require import require_tool
from tests.unit.helpers import TODAY

PREFIX = "/opt/org/python/3.13"


def _images(repo_loaded: Loaded, repo_lock: Lock) -> list[plan.PlannedImage]:
    return list(plan.build(repo_loaded, repo_lock, today=TODAY).images)


def test_every_check_runs_on_every_platform_under_the_same_name(
        repo_loaded: Loaded, repo_lock: Lock) -> None:
    for img in _images(repo_loaded, repo_lock):
        native = suite.checks_for(img, uid=10001, prefix=PREFIX, tls_host="pypi.org")
        emulated = suite.checks_for(img, uid=10001, prefix=PREFIX, tls_host="pypi.org",
                                    emulated=True)
        assert [c.name for c in native] == [c.name for c in emulated], img.id
        differ = {c.name for c, e in zip(native, emulated, strict=True) if c.argv != e.argv}
        assert differ == ({"dev-c-extension-wheel", "venv-with-pip"} if img.variant == "dev"
                          else set()), img.id


@pytest.mark.spawns("sh")
def test_emulated_c_extension_check_uses_the_sysconfig_toolchain(
        tmp_path: Path, repo_loaded: Loaded, repo_lock: Lock) -> None:
    """Run the emulated variant here with the host's Python and gcc: it compiles, links and
    imports the module with exactly what sysconfig names (the cross build rewrites CC)."""
    require_tool("gcc", require.GCC)
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():  # Debian's python3 has its headers in -dev
        require.unavailable(f"no {include}/Python.h on this host", "apt-get install python3-dev")
    dev = next(i for i in _images(repo_loaded, repo_lock) if i.variant == "dev")
    (check,) = [c for c in suite.checks_for(dev, uid=10001, prefix=PREFIX, tls_host="pypi.org",
                                            emulated=True) if c.name == "dev-c-extension-wheel"]
    script = check.argv[2]
    assert script == suite.snippet("dev_c_extension_wheel_emulated.sh")
    assert "python3 -m build" not in script and "ensurepip" not in script
    assert check.argv[4:] == [suite.snippet("spam.c")]  # the C source, as the argument
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    proc = subprocess.run(check.argv, capture_output=True, text=True, check=False,
                          env={"PATH": f"{bindir}:/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "spam ok" in proc.stdout


def test_downstream_app_builds_from_source_natively_and_takes_the_wheel_under_emulation() -> None:
    native = smoke_app.downstream_app("dev:x", "runtime:x", PREFIX)
    emulated = smoke_app.downstream_app("dev:x", "runtime:x", PREFIX, emulated=True)
    assert "--no-binary markupsafe" in native and "--only-binary" not in native
    assert "--only-binary markupsafe" in emulated
    for text in (native, emulated):
        assert "python3 -m venv --without-pip /app/venv" in text
        assert "pip --python /app/venv/bin/python install" in text


def test_hardening_policy_without_lto_requires_what_the_recorded_switches_show() -> None:
    policy = smoke_hardening.hardening_policy({}, lto=False, frame_pointers=True)
    assert policy.required == elf.DEFAULT_REQUIRED | {"stack-clash", "cf-protection",
                                                            "frame-pointers"}
    assert {w.files for w in policy.waivers} == {"lib/libpython3.so"}  # the stable-ABI shim
    off = smoke_hardening.hardening_policy({"fortify": "a documented reason"}, lto=False,
                                 frame_pointers=False)
    assert "fortify" not in off.required and "frame-pointers" not in off.required


def test_hardening_policy_under_lto_waives_module_canaries_with_the_reason() -> None:
    policy = smoke_hardening.hardening_policy({}, lto=True, frame_pointers=True)
    assert policy.required == elf.DEFAULT_REQUIRED  # nothing the LTO record cannot show
    (waiver,) = [w for w in policy.waivers if w.files != "lib/libpython3.so"]
    assert waiver.property == "stack-protector" and "LTO" in waiver.reason
    assert waiver.covers("lib/python3.13/lib-dynload/_json.cpython-313-x86_64-linux-gnu.so",
                         "stack-protector")
    assert not waiver.covers("bin/python3.13", "stack-protector")


def test_deadsnakes_checks_look_at_the_ppa_interpreter_not_the_prefix(
        repo_loaded: Loaded, repo_lock: Lock) -> None:
    """deadsnakes installs /usr/bin/python3.X and /usr/lib/python3.X (the prefix only links
    to it): ldd, read-only and the venv promise look there; the runtime may carry ensurepip
    (python3.X-venv ships it) but never pip."""
    images = {i.id: i for i in _images(repo_loaded, repo_lock)}
    ds = images["3.13-deadsnakes-noble-runtime"]
    src = images["3.13-source-noble-runtime"]
    assert suite.python_files(ds, PREFIX) == ["/usr/bin/python3.13", "/usr/lib/python3.13"]
    assert suite.python_files(src, PREFIX) == [PREFIX]
    assert suite.python_home(ds, PREFIX) == "/usr" and suite.python_home(src, PREFIX) == PREFIX
    # the scripts take the paths and modules as arguments (test_smoke_snippets runs them)
    checks = {c.name: c.argv for c in
              suite.checks_for(ds, uid=10001, prefix=PREFIX, tls_host="pypi.org")}
    ppa = ["/usr/bin/python3.13", "/usr/lib/python3.13"]
    assert checks["ldd-resolves"][3:] == ["ldd_resolves.sh", *ppa]
    assert 'find "$@" -type f' in checks["ldd-resolves"][2]
    assert checks["python-tree-read-only"][3:] == ["python_tree_read_only.sh", *ppa]
    assert 'find "$@" -writable' in checks["python-tree-read-only"][2]
    assert checks["pip-only-in-dev"][3:] == ["pip"]
    src_checks = {c.name: c.argv for c in
                  suite.checks_for(src, uid=10001, prefix=PREFIX, tls_host="pypi.org")}
    assert src_checks["pip-only-in-dev"][3:] == ["pip", "ensurepip"]
    assert src_checks["ldd-resolves"][3:] == ["ldd_resolves.sh", PREFIX]
    assert src_checks["python-tree-read-only"][3:] == ["python_tree_read_only.sh", PREFIX]
    app = smoke_app.downstream_app("dev:x", "runtime:x", suite.python_home(ds, PREFIX))
    assert "sys.base_prefix == '/usr'" in app
