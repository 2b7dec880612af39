"""Smoke tests: every built image is checked in throwaway containers before it may be pushed."""

from __future__ import annotations

import functools
import json
import textwrap
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from orchestrator import log
from orchestrator.config.publish import VEX_COMPONENTS
from orchestrator.planning.plan import PlannedImage

if TYPE_CHECKING:
    from orchestrator.engine import Engine

_log = log.get("smoke")

VARIANTS = ("runtime", "dev", "minimal")
STDLIB = ["ssl", "sqlite3", "ctypes", "zlib", "lzma", "bz2", "uuid", "decimal", "_decimal",
          "hashlib", "venv", "zoneinfo", "json", "asyncio"]
DEV_STDLIB = ["readline", "curses"]
SNIPPETS = "orchestrator.smoke.checks"  # the files the checks run in the image (package data)
SPAM_C = "spam.c"  # the C extension dev-c-extension-wheel builds


@dataclass(frozen=True)
class Check:
    name: str
    argv: list[str]
    expect: Callable[[int, str], str | None]  # returns a problem or None
    user: str | None = None
    variants: tuple[str, ...] = ("runtime", "dev")  # the shell checks; VARIANTS: every image


@dataclass(frozen=True)
class CheckResult:
    image: str
    check: str
    ok: bool
    problem: str
    output: str
    seconds: float

    def describe(self) -> str:
        out = textwrap.indent(self.output.strip()[-2000:], "    ")
        return f"{self.image}: check {self.check} failed: {self.problem}\n{out}"


def python_home(img: PlannedImage, prefix: str) -> str:
    """sys.base_prefix of the image's interpreter: the prefix we install to, or /usr for
    deadsnakes (the PPA's packages install /usr/bin/python3.X; the prefix holds only the
    python/python3 links that PATH finds)."""
    return "/usr" if img.method == "deadsnakes" else prefix


def python_files(img: PlannedImage, prefix: str) -> list[str]:
    """The interpreter's own files: the whole prefix, or the PPA package's binary and stdlib."""
    if img.method == "deadsnakes":
        return [f"/usr/bin/python{img.python}", f"/usr/lib/python{img.python}"]
    return [prefix]


# ---------------------------------------------------------------------------- the check table


@dataclass(frozen=True)
class Target:
    """What the rows of the table read: the image and how its checks are run."""
    img: PlannedImage
    uid: int
    prefix: str
    tls_host: str
    emulated: bool  # a platform the host runs under QEMU
    platform: str | None = None  # the platform checked (None: the image's first, native one)

    @property
    def files(self) -> list[str]:
        return python_files(self.img, self.prefix)

    @property
    def modules(self) -> list[str]:
        # minimal carries the libraries of readline and curses: its tree links them (ldd)
        return STDLIB + (DEV_STDLIB if self.img.variant in ("dev", "minimal") else [])

    @property
    def exact(self) -> bool:
        return self.img.method != "deadsnakes"  # the PPA's patch release is not in images.lock


Verdict = Callable[[Target, int, str], str | None]  # returns a problem or None


def _exit0(t: Target, code: int, out: str) -> str | None:
    return None if code == 0 else f"exit code {code}"


def _version_ok(t: Target, code: int, out: str) -> str | None:
    got = out.strip().removeprefix("Python ").strip()
    if code != 0:
        return f"exit code {code}"
    if t.exact and got != t.img.version:
        return f"python3 --version is {got}, images.lock says {t.img.version}"
    if not got.startswith(t.img.base_minor + "."):
        return f"python3 --version is {got}, expected {t.img.base_minor}.x"
    return None


def _uid_ok(t: Target, code: int, out: str) -> str | None:
    return None if code == 0 and out.strip() == str(t.uid) \
        else f"default user is uid {out.strip()}, expected {t.uid}"


COMPONENTS = "components"  # the check whose output the OpenVEX attestation is made from


def components(output: str) -> dict[str, str | None]:
    """What the components check printed: component -> where it was found (None: absent).
    ValueError unless it is one JSON object with exactly images.yaml's VEX component names."""
    lines = output.strip().splitlines()
    doc = json.loads(lines[-1]) if lines else None
    if not isinstance(doc, dict) or set(doc) != set(VEX_COMPONENTS):
        raise ValueError(f"not a JSON object with the keys {', '.join(VEX_COMPONENTS)}")
    if not all(v is None or isinstance(v, str) for v in doc.values()):
        raise ValueError("a value is neither a path nor null")
    return {k: doc[k] for k in VEX_COMPONENTS}


def _components_ok(t: Target, code: int, out: str) -> str | None:
    if code != 0:
        return f"exit code {code}"
    try:
        components(out)
    except ValueError as exc:
        return f"the probe's output is {exc}"
    return None


def _no_args(t: Target) -> Sequence[str]:
    return ()


def _always(t: Target) -> bool:
    return True


def _minor_at_least(t: Target, minor: tuple[int, int]) -> bool:
    major, _, rest = t.img.base_minor.partition(".")
    return (int(major), int(rest)) >= minor


def has_jit(img: PlannedImage, platform: str | None) -> bool:
    """Whether the compile of ``platform`` has the JIT built in (label optimizations says
    jit-yes-off: a clang profile's native 3.14+ compile; cross compiles never)."""
    opts = img.optimizations or {}
    plat = platform or (img.platforms[0] if img.platforms else "")
    return "jit-yes-off" in opts.get(plat, "").split("+")


def _spam_c(t: Target) -> Sequence[str]:
    return (snippet(SPAM_C),)


@dataclass(frozen=True)
class Row:
    """One check of the table. ``run``: a file of smoke_checks/ (``.sh``: run by /bin/sh -e,
    ``.py``: by python3 -c) given ``args`` as its arguments, or a command line."""
    name: str
    run: str
    variants: tuple[str, ...]
    args: Callable[[Target], Sequence[str]] = _no_args
    expect: Verdict = _exit0
    user: str | None = None
    when: Callable[[Target], bool] = _always


SHELL = ("runtime", "dev")  # the variants with a shell
RUNTIME, DEV, MINIMAL = ("runtime",), ("dev",), ("minimal",)

# In order. Each name runs once per image: a name with two rows has disjoint variants or `when`s.
CHECK_TABLE: tuple[Row, ...] = (
    Row("python-version", "python3 --version", VARIANTS, expect=_version_ok),
    Row("on-path", "on_path.sh", SHELL,
        args=lambda t: ("python3", "python", *(("pip",) if t.img.variant == "dev" else ()))),
    Row("stdlib-imports", "stdlib_imports.py", VARIANTS, args=lambda t: t.modules),
    Row("tls-verify", "tls_verify.py", VARIANTS, args=lambda t: (t.tls_host,)),
    Row("ldd-resolves", "ldd_resolves.sh", SHELL, args=lambda t: t.files, user="0"),
    Row("runs-as-non-root", "id -u", SHELL, expect=_uid_ok),
    Row("python-tree-read-only", "python_tree_read_only.sh", SHELL, args=lambda t: t.files),
    Row("no-compilers", "no_compilers.sh", RUNTIME),
    Row("no-package-caches", "no_package_caches.sh", RUNTIME, user="0"),
    # under emulation pip would take minutes: the extension is compiled with sysconfig's toolchain
    Row("dev-c-extension-wheel", "dev_c_extension_wheel.sh", DEV, args=_spam_c,
        when=lambda t: not t.emulated),
    Row("dev-c-extension-wheel", "dev_c_extension_wheel_emulated.sh", DEV, args=_spam_c,
        when=lambda t: t.emulated),
    # pip and ensurepip ship in dev only: the runtime makes venvs without pip (or runs one
    # built in dev, as downstream-app checks); dev makes venvs with pip. deadsnakes:
    # python3.X-venv (the venv module) carries ensurepip; pip itself is dev only.
    Row("pip-only-in-dev", "pip_only_in_dev.py", ("runtime", "minimal"),
        args=lambda t: ("pip", "ensurepip") if t.exact else ("pip",)),
    Row("startup-modules-frozen", "startup_modules_frozen.py", VARIANTS,
        args=lambda t: t.img.frozen_modules, when=lambda t: bool(t.img.frozen_modules)),
    # build.pie: the ELF type of the interpreter (ET_EXEC 2 = -no-pie, ET_DYN 3 = PIE)
    Row("interpreter-link", "interpreter_link.py", VARIANTS,
        args=lambda t: (str(3 if t.img.pie else 2),), when=lambda t: t.img.pie is not None),
    Row("free-threaded", "free_threaded.py", VARIANTS, args=lambda t: t.modules,
        when=lambda t: t.img.freethreaded),
    Row("new-in-3.14", "new_in_314.py", VARIANTS, when=lambda t: _minor_at_least(t, (3, 14))),
    # profiles.*.jit yes-off: built in, off by default, on with PYTHON_JIT=1
    Row("jit", "jit.py", VARIANTS, when=lambda t: has_jit(t.img, t.platform)),
    Row("venv", "venv.sh", RUNTIME),
    Row("venv-with-pip", "venv_with_pip.sh", DEV, when=lambda t: not t.emulated),
    Row("venv-with-pip", "venv_with_pip_emulated.sh", DEV, when=lambda t: t.emulated),
    # minimal: what the shell checks of runtime check, done by its interpreter
    Row("extensions-load", "extensions_load.py", MINIMAL),  # ldd-resolves
    Row("runs-as-non-root", "runs_as_non_root.py", MINIMAL, expect=_uid_ok),
    Row("python-tree-read-only", "python_tree_read_only.py", MINIMAL, args=lambda t: (t.prefix,)),
    Row("no-shell", "no_shell.py", MINIMAL),
    Row("dpkg-status", "dpkg_status.py", MINIMAL),
    Row("utf-8", "utf_8.py", MINIMAL),
    Row("venv", "venv.py", MINIMAL),
    # what the build left out, for the image's OpenVEX attestation (supplychain/vex.py)
    Row(COMPONENTS, "components.py", VARIANTS, expect=_components_ok),
)


def snippet_files() -> set[str]:
    """Every file of smoke_checks/ the table runs or passes to a check."""
    return {r.run for r in CHECK_TABLE if r.run.endswith((".sh", ".py"))} | {SPAM_C}


@functools.cache
def snippet(name: str) -> str:
    """The text of a file of smoke_checks/ (package data)."""
    return resources.files(SNIPPETS).joinpath(name).read_text(encoding="utf-8")


def _py_args(argv: list[str]) -> list[str]:
    """The arguments of an image whose entrypoint is python3 (minimal: no shell to run it)."""
    if argv[0] != "python3":
        raise ValueError(f"not a python3 command, cannot run without a shell: {argv[:2]}")
    return argv[1:]


def argv_of(row: Row, t: Target) -> list[str]:
    """The command of a row for an image: the file's text verbatim, its parameters after it."""
    args = list(row.args(t))
    if row.run.endswith(".sh"):  # $0 names the file in the shell's messages
        return ["/bin/sh", "-ec", snippet(row.run), row.run, *args]
    if row.run.endswith(".py"):
        argv = ["python3", "-c", snippet(row.run), *args]
    else:
        argv = [*row.run.split(), *args]
    return argv if t.img.has_shell else _py_args(argv)


def checks_for(img: PlannedImage, *, uid: int, prefix: str, tls_host: str,
               emulated: bool = False, platform: str | None = None) -> list[Check]:
    """The checks of one image, in the table's order. ``emulated`` (a platform the host runs
    under QEMU): the two checks that run pip end to end do the same thing with less pip, which
    under emulation took minutes per venv (dev_c_extension_wheel_emulated.sh and
    venv_with_pip_emulated.sh). A minimal image has no shell and python3 as its entrypoint:
    its checks are Python, given as its arguments."""
    t = Target(img, uid, prefix, tls_host, emulated, platform)
    return [Check(r.name, argv_of(r, t), functools.partial(r.expect, t), r.user, r.variants)
            for r in CHECK_TABLE if img.variant in r.variants and r.when(t)]


EMULATED_ENV = {"PIP_NO_COMPILE": "1"}
FORCED_FAILURE = "forced-failure"  # the check ORCH_SMOKE_FAIL_PLATFORM adds (settings.py)


def forced_failure(img: PlannedImage, platform: str) -> Check:
    """The check the test switch ORCH_SMOKE_FAIL_PLATFORM adds on its platform: run in the
    image like every check (it prints the machine the interpreter runs on, e.g. aarch64 under
    QEMU), and failed whatever it prints, saying why."""
    argv = ["python3", "-c", "import platform; print(platform.machine())"]

    def verdict(code: int, out: str) -> str:
        return (f"failed on purpose: ORCH_SMOKE_FAIL_PLATFORM={platform} is set (a test switch); "
                f"the image ran on {out.strip() or 'nothing it said'} (exit code {code})")

    return Check(FORCED_FAILURE, argv if img.has_shell else _py_args(argv), verdict,
                 variants=VARIANTS)


def check_name(check: str, label: str | None) -> str:
    """Checks of a non-native platform carry it in their name: `stdlib-imports [linux/arm64]`."""
    return f"{check} [{label}]" if label else check


def run_checks(engine: Engine, image_ref: str, img: PlannedImage, *, uid: int, prefix: str,
               tls_url: str, timeout: float = 600, platform: str | None = None,
               label: str | None = None, fail_on_purpose: bool = False) -> list[CheckResult]:
    """Every check of ``img`` on ``platform``; ``fail_on_purpose`` (ORCH_SMOKE_FAIL_PLATFORM
    names this platform) adds the forced-failure check last."""
    tls_host = urllib.parse.urlparse(tls_url).hostname or "pypi.org"
    results = []
    # Under emulation (a platform other than the build host's: ``label`` set) pip skips
    # compiling bytecode: byte-compiling pip's ~1000 files under QEMU took minutes per venv.
    env = EMULATED_ENV if label else None
    checks = checks_for(img, uid=uid, prefix=prefix, tls_host=tls_host, emulated=bool(label),
                        platform=platform)
    if fail_on_purpose:
        checks.append(forced_failure(img, platform or "the native platform"))
    for check in checks:
        outcome = engine.run(image_ref, check.argv, user=check.user, timeout=timeout,
                             platform=platform, env=env)
        problem = check.expect(outcome.exit_code, outcome.output)
        results.append(CheckResult(img.id, check_name(check.name, label), problem is None,
                                   problem or "", outcome.output, outcome.seconds))
        _log.info("check", image=img.id, check=check.name, platform=platform,
                  ok=problem is None, seconds=round(outcome.seconds, 1))
    return results


def size_check(img: PlannedImage, size_bytes: int, label: str | None = None) -> CheckResult:
    mb = size_bytes / 1e6
    ok = mb <= img.size_budget_mb
    return CheckResult(img.id, check_name("size-budget", label), ok,
                       "" if ok else f"{mb:.1f} MB exceeds the budget of {img.size_budget_mb} MB "
                       "(variants.<name>.size_budget_mb in images.yaml)", f"{mb:.1f} MB", 0.0)
