"""``pyenv``: a deterministic pyenv-<version>.tar.gz of the pyenv checkout, where the e2e matrix's
``sources.pyenv.url`` expects it. HEAD as ``git archive | gzip -n`` (the same bytes for the same
commit); without git, a tar of the working tree with fixed names, owners and times."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from hostkit.common import HostEnv, HostkitError, Out, Run, file_hash, put_file, update_sha256sums
from hostkit.matrix import MirrorPlan
from orchestrator import runner
from orchestrator.errors import CommandError


def checkout_version(root: Path) -> str:
    script = root / "libexec" / "pyenv---version"
    if not os.access(script, os.X_OK):
        raise HostkitError(f"pyenv checkout {root} not found: it is needed for the python-build release "
                           "tarball and is not on PyPI (pip download cannot get it); clone pyenv to "
                           f"{root} or set ORCH_PYENV_ROOT")
    m = re.search(r'^version="([^"]+)"', script.read_text(errors="replace"), re.MULTILINE)
    if not m:
        raise HostkitError(f"cannot read the pyenv version from {script}")
    return m.group(1)


class PyenvTarball:
    def __init__(self, env: HostEnv, plan: MirrorPlan, out: Out, run: Run = runner.run) -> None:
        self.env, self.plan, self.out, self.run = env, plan, out, run
        self.git_env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # `git status` leaves .git/index be

    def _git(self, *args: str | Path, check: bool = True) -> runner.Completed:
        return self.run(["git", "-C", self.env.pyenv_root, *args], check=check, env=self.git_env,
                        timeout=600)

    def _head(self) -> str | None:
        if shutil.which("git") is None:
            return None
        try:
            res = self._git("rev-parse", "--verify", "-q", "--short", "HEAD", check=False)
        except CommandError:
            return None
        return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None

    def update(self) -> Path:
        root, want = self.env.pyenv_root, self.plan.pyenv_version
        version = checkout_version(root)
        if version != want:
            raise HostkitError(f"pyenv checkout {root} is {version} but {self.env.matrix} "
                               f"(sources.pyenv.version) wants {want}; check out v{want} there")
        dst = self.env.mirror_dir / self.plan.pyenv_file
        prefix = f"pyenv-{version}"
        with tempfile.TemporaryDirectory(prefix="hostkit-pyenv.") as tmp:
            tarball = Path(tmp) / "pyenv.tar.gz"
            head = self._head()
            if head:
                how = f"git archive {head}"
                if self._git("status", "--porcelain", "--untracked-files=no").stdout.strip():
                    self.out.warn(f"{root} has uncommitted changes; the tarball contains HEAD only")
                # gzip -n, as `git archive --format=tar | gzip -n`: git's built-in gzip writes
                # other bytes
                self._git("-c", "tar.tar.gz.command=gzip -cn", "archive", "--format=tar.gz",
                          f"--prefix={prefix}/", "-o", tarball, "HEAD")
            else:
                how = "tar of the working tree"
                tar = Path(tmp) / "pyenv.tar"
                self.run(["tar", "-C", root.parent, "--exclude=.git", "--sort=name", "--mtime=@0",
                          "--owner=0", "--group=0", "--numeric-owner",
                          f"--transform=s,^{re.escape(root.name)},{prefix},", "-cf", tar, root.name],
                         timeout=600)
                self.run(["gzip", "-n", tar], timeout=600)
            put_file(tarball, dst, self.out, f" ({how})")
        self.out.say(f"  sha256 {file_hash(dst)}  {dst}")
        self.out.say(f"  URL {self.env.mirror_url}{self.plan.pyenv_file.as_posix()}")
        update_sha256sums(self.env.mirror_dir, self.out)
        return dst
