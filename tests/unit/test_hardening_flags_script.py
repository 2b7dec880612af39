"""stages/scripts/hardening-flags.sh: the distro decides hardening, the profile optimisation
(issue 33, item 2). Ubuntu's dpkg adds LTO, frame pointers and -Bsymbolic-functions to every
build; the script must hand the compile its hardening flags only. Ubuntu's vendor defaults are
stood in for by a dpkg-buildflags user configuration file (applied, as vendor defaults are,
before the maintainer's DEB_*_MAINT_* variables the script sets)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.require import require_tool
from tests.unit.helpers import REPO

SCRIPT = REPO / "stages" / "scripts" / "hardening-flags.sh"
UBUNTU_DEFAULTS = ("APPEND CFLAGS -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer "
                   "-flto=auto -ffat-lto-objects\n"
                   "APPEND LDFLAGS -Wl,-Bsymbolic-functions -flto=auto -ffat-lto-objects\n")
NOT_HARDENING = ("-flto=auto", "-ffat-lto-objects", "-fno-omit-frame-pointer",
                 "-mno-omit-leaf-frame-pointer", "-Wl,-Bsymbolic-functions", "-O2", "-g")


def _flags(tmp_path: Path, vendor: str, arch: str = "amd64") -> tuple[list[str], list[str]]:
    require_tool("dpkg-buildflags", "apt-get install dpkg-dev")
    conf = tmp_path / "xdg" / "dpkg"
    conf.mkdir(parents=True)
    (conf / "buildflags.conf").write_text(vendor)
    env = {"PATH": os.environ["PATH"], "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "DEB_BUILD_MAINT_OPTIONS": "hardening=+all,-format", "HARDENING_ARCH": arch}
    out = subprocess.run(["bash", "-c", f'. "{SCRIPT}"; printf "%s\\n%s\\n" "$HARDENING_CFLAGS" '
                          '"$HARDENING_LDFLAGS"'], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    return out[0].split(), out[1].split()


@pytest.mark.spawns("bash")
@pytest.mark.parametrize("vendor", ["", UBUNTU_DEFAULTS], ids=["debian", "ubuntu-defaults"])
def test_only_hardening_reaches_the_compile(tmp_path: Path, vendor: str) -> None:
    cflags, ldflags = _flags(tmp_path, vendor)
    for flag in NOT_HARDENING:
        assert flag not in cflags and flag not in ldflags, (flag, cflags, ldflags)
    assert {"-fstack-protector-strong", "-fstack-clash-protection", "-fcf-protection"} <= set(cflags)
    assert any(f.startswith("-D_FORTIFY_SOURCE=") for f in cflags), cflags
    assert {"-Wl,-z,relro", "-Wl,-z,now"} <= set(ldflags), ldflags


@pytest.mark.spawns("dpkg-buildflags")
def test_the_stand_in_for_ubuntu_defaults_does_add_them_without_the_script(tmp_path: Path) -> None:
    """The check above can fail: dpkg-buildflags alone does give the Ubuntu-like flags."""
    require_tool("dpkg-buildflags", "apt-get install dpkg-dev")
    conf = tmp_path / "xdg" / "dpkg"
    conf.mkdir(parents=True)
    (conf / "buildflags.conf").write_text(UBUNTU_DEFAULTS)
    env = {"PATH": os.environ["PATH"], "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    cflags = subprocess.run(["dpkg-buildflags", "--get", "CFLAGS"], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout.split()
    assert "-flto=auto" in cflags and "-fno-omit-frame-pointer" in cflags
