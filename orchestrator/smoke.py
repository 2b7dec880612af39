"""Smoke tests: every built image is checked in throwaway containers before it may be pushed."""

from __future__ import annotations

import textwrap
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import log
from orchestrator.plan import PlannedImage

if TYPE_CHECKING:
    from orchestrator.engine import Engine

_log = log.get("smoke")

VARIANTS = ("runtime", "dev", "minimal")
STDLIB = ["ssl", "sqlite3", "ctypes", "zlib", "lzma", "bz2", "uuid", "decimal", "_decimal",
          "hashlib", "venv", "zoneinfo", "json", "asyncio"]
DEV_STDLIB = ["readline", "curses"]


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


def _exit0(code: int, out: str) -> str | None:
    return None if code == 0 else f"exit code {code}"


def _sh(script: str) -> list[str]:
    return ["/bin/sh", "-ec", script]


def _py(script: str) -> list[str]:
    return ["python3", "-c", textwrap.dedent(script)]


def _py_args(script: str) -> list[str]:
    """The arguments of an image whose entrypoint is python3 (minimal: no shell to run it)."""
    return ["-c", textwrap.dedent(script)]


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


def checks_for(img: PlannedImage, *, uid: int, prefix: str, tls_host: str,
               emulated: bool = False) -> list[Check]:
    """The checks of one image. ``emulated`` (a platform the host runs under QEMU): the two
    checks that run pip end to end do the same thing with less pip, which under emulation
    took minutes per venv (see _emulated_wheel_script and venv-with-pip). A minimal image has
    no shell and python3 as its entrypoint: its checks are Python, given as its arguments."""
    version = img.version
    py = _py if img.has_shell else _py_args
    exact = img.method != "deadsnakes"  # the PPA's patch release is not in images.lock
    files = " ".join(python_files(img, prefix))
    # deadsnakes: python3.X-venv (the venv module) carries ensurepip; pip itself is dev only
    no_pip = ("pip", "ensurepip") if exact else ("pip",)

    def version_ok(code: int, out: str) -> str | None:
        got = out.strip().removeprefix("Python ").strip()
        if code != 0:
            return f"exit code {code}"
        if exact and got != version:
            return f"python3 --version is {got}, images.lock says {version}"
        if not got.startswith(img.base_minor + "."):
            return f"python3 --version is {got}, expected {img.base_minor}.x"
        return None

    # minimal carries the libraries of readline and curses: its tree links them (ldd)
    modules = STDLIB + (DEV_STDLIB if img.variant in ("dev", "minimal") else [])
    imports = f"""
        import importlib, hashlib, ssl, zoneinfo, sqlite3, decimal
        for m in {modules!r}:
            importlib.import_module(m)
        hashlib.sha3_256(b"x"); hashlib.blake2b(b"x")
        assert zoneinfo.ZoneInfo("Europe/Paris").key == "Europe/Paris"
        assert decimal.__file__ is None or "_pydecimal" not in decimal.__file__
        assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 0, "empty CA store"
        print("ok", ssl.OPENSSL_VERSION, sqlite3.sqlite_version)
    """
    tls = f"""
        import socket, ssl
        ctx = ssl.create_default_context()
        with socket.create_connection(({tls_host!r}, 443), timeout=20) as s:
            with ctx.wrap_socket(s, server_hostname={tls_host!r}) as t:
                print("verified", t.version(), t.getpeercert()["subject"])
    """
    ldd = f"""
        bad=0
        for f in $(find {files} -type f \\( -name '*.so*' -o -perm -u+x \\)); do
          if [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
            if ldd "$f" 2>&1 | grep -q 'not found'; then echo "$f:"; ldd "$f" | grep 'not found'; bad=1; fi
          fi
        done
        exit $bad
    """
    checks = [
        Check("python-version", ["python3", "--version"] if img.has_shell else ["--version"],
              version_ok, variants=VARIANTS),
        Check("on-path", _sh("command -v python3 && command -v python"
                              + (" && command -v pip" if img.variant == "dev" else "")), _exit0),
        Check("stdlib-imports", py(imports), _exit0, variants=VARIANTS),
        Check("tls-verify", py(tls), _exit0, variants=VARIANTS),
        Check("ldd-resolves", _sh(ldd), _exit0, user="0"),
        Check("runs-as-non-root", ["id", "-u"],
              lambda c, o: None if c == 0 and o.strip() == str(uid)
              else f"default user is uid {o.strip()}, expected {uid}"),
        Check("python-tree-read-only",
              _sh(f"w=$(find {files} -writable -print -quit 2>/dev/null); "
                  f'[ -z "$w" ] || {{ echo "writable: $w"; exit 1; }}'),
              _exit0),
        Check("no-compilers", _sh(
            "for t in gcc cc c++ g++ make as ld; do if command -v $t; then echo \"found $t\"; "
            "exit 1; fi; done; for p in gcc make binutils libc6-dev; do "
            "if dpkg-query -W -f '${Status}' $p 2>/dev/null | grep -q 'ok installed'; then "
            "echo \"package $p installed\"; exit 1; fi; done"), _exit0, variants=("runtime",)),
        Check("no-package-caches", _sh(
            "n=$(find /var/lib/apt/lists /var/cache/apt /root/.cache /home/*/.cache "
            "-mindepth 1 \\( -type f -o -type l \\) 2>/dev/null | grep -v '/lock$' | wc -l); "
            "[ \"$n\" -eq 0 ] || { find /var/lib/apt/lists /var/cache/apt -type f | head; exit 1; }"),
            _exit0, user="0", variants=("runtime",)),
        Check("dev-c-extension-wheel", _sh(_emulated_wheel_script() if emulated else _wheel_script()),
              _exit0, variants=("dev",)),
        # pip and ensurepip ship in dev only: the runtime makes venvs without pip (or runs
        # one built in dev, as downstream-app checks); dev makes venvs with pip.
        Check("pip-only-in-dev", py(
            "import importlib.util as u, sys\n"
            f"found = [f'{{m}} at {{s.origin}}' for m in {no_pip!r} if (s := u.find_spec(m))]\n"
            "sys.exit('importable in the runtime: ' + ', '.join(found) if found else 0)"),
            _exit0, variants=("runtime", "minimal")),
        # build.freeze_modules: each listed module loads frozen from the interpreter, and
        # the stdlib on disk still serves it when freezing is switched off.
        Check("startup-modules-frozen", py(
            "import importlib.util as u, subprocess, sys\n"
            f"mods = {list(img.frozen_modules)!r}\n"
            "bad = [f'{m} from {s.origin if s else None}' for m in mods\n"
            "       if (s := u.find_spec(m)) is None or s.origin != 'frozen']\n"
            "off = subprocess.run([sys.executable, '-X', 'frozen_modules=off', '-c',\n"
            "    'import sys; ' + '; '.join(f'import {m}' for m in mods) + '; '\n"
            "    'sys.exit(0 if all(sys.modules[m].__spec__.origin != \"frozen\" for m in '\n"
            "    + repr(mods) + ') else 3)'])\n"
            "bad += [] if off.returncode == 0 else [f'-X frozen_modules=off exit {off.returncode}']\n"
            "sys.exit('not frozen: ' + ', '.join(bad) if bad else 0)"),
            _exit0, variants=VARIANTS) if img.frozen_modules else None,
        # build.pie: the ELF type of the interpreter (ET_EXEC 2 = -no-pie, ET_DYN 3 = PIE).
        Check("interpreter-link", py(
            "import os, sys\n"
            "e_type = open(os.path.realpath(sys.executable), 'rb').read(18)[16]\n"
            f"want = {3 if img.pie else 2}\n"
            "sys.exit(0 if e_type == want else f'{sys.executable}: ELF type {e_type}, "
            f"expected {{want}} (build.pie: {str(img.pie).lower()})')"),
            _exit0, variants=VARIANTS) if img.pie is not None else None,
        # pythons[].freethreaded: the t ABI, and no GIL even after every stdlib C module
        # (each declares free-threading support; one that did not would turn the GIL on).
        Check("free-threaded", py(freethreaded_script(modules)), _exit0,
              variants=VARIANTS) if img.freethreaded else None,
        Check("venv", _sh(
            'd=$(mktemp -d) && python3 -m venv --without-pip "$d/v" && "$d/v/bin/python" -c "import sys; '
            'assert sys.prefix != sys.base_prefix"'), _exit0, variants=("runtime",)),
        Check("venv-with-pip", _sh(
            'd=$(mktemp -d) && python3 -m venv "$d/v" && "$d/v/bin/python" -m pip --version'
            if not emulated else  # the dev image's pip serves a venv without its own copy
            'd=$(mktemp -d) && python3 -m venv --without-pip "$d/v" '
            '&& python3 -m pip --python "$d/v/bin/python" list --format=freeze'),
            _exit0, variants=("dev",)),
        *_minimal_checks(uid, prefix, py),
    ]
    return [c for c in checks if c is not None and img.variant in c.variants]


def _minimal_checks(uid: int, prefix: str, py: Callable[[str], list[str]]) -> list[Check]:
    """What the shell checks of runtime check, done by the interpreter of a minimal image."""
    minimal = ("minimal",)
    return [
        # ldd-resolves: every extension module loads (the loader finds each library it links)
        Check("extensions-load", py("""
            import importlib, os, sys, sysconfig
            d = os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")
            names = sorted(f.split(".", 1)[0] for f in os.listdir(d) if f.endswith(".so"))
            bad = []
            for name in names:
                try:
                    importlib.import_module(name)
                except ImportError as exc:
                    bad.append(f"{name}: {exc}")
            print(len(names), "extension modules")
            sys.exit("; ".join(bad) if bad else 0)
        """), _exit0, variants=minimal),
        Check("runs-as-non-root", py("import os; print(os.getuid())"),
              lambda c, o: None if c == 0 and o.strip() == str(uid)
              else f"default user is uid {o.strip()}, expected {uid}", variants=minimal),
        Check("python-tree-read-only", py(f"""
            import os, sys
            bad = [p for root, _, files in os.walk({prefix!r})
                   for p in (root, *(os.path.join(root, f) for f in files)) if os.access(p, os.W_OK)]
            sys.exit("writable: " + ", ".join(bad[:5]) if bad else 0)
        """), _exit0, variants=minimal),
        # no shell, no package manager, no compiler, nothing in a bin/ directory: python3 is
        # the only program (docker run <image> sh is python3 sh, which fails)
        Check("no-shell", py("""
            import os, shutil, subprocess, sys
            found = [p for p in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/bin/dash", "/bin/busybox")
                     if os.path.lexists(p)]
            found += [f"{t} on PATH" for t in ("sh", "bash", "dash", "busybox", "apt", "apt-get",
                      "dpkg", "dpkg-query", "gcc", "cc", "make", "ld") if shutil.which(t)]
            found += [f"{d}: {sorted(os.listdir(d))[:5]}" for d in ("/bin", "/sbin", "/usr/bin",
                      "/usr/sbin", "/usr/local/bin", "/usr/local/sbin") if os.path.isdir(d) and os.listdir(d)]
            try:
                subprocess.run(["sh", "-c", "true"], check=False)
                found.append("sh ran")
            except FileNotFoundError:
                pass
            sys.exit("found: " + ", ".join(found) if found else 0)
        """), _exit0, variants=minimal),
        # what scanners and SBOM tools read: the dpkg status of the packages carried
        Check("dpkg-status", py("""
            import sys
            text = open("/var/lib/dpkg/status").read()
            names = {l.split(": ", 1)[1] for l in text.splitlines() if l.startswith("Package: ")}
            missing = [p for p in ("base-files", "libc6", "ca-certificates", "tzdata") if p not in names]
            print(len(names), "packages:", " ".join(sorted(names)))
            sys.exit("not in /var/lib/dpkg/status: " + ", ".join(missing) if missing else 0)
        """), _exit0, variants=minimal),
        # no C.UTF-8 locale files: CPython's UTF-8 mode (PEP 540) keeps every encoding UTF-8
        Check("utf-8", py("""
            import locale, sys
            enc = (sys.getfilesystemencoding(), sys.stdout.encoding, locale.getpreferredencoding(False))
            sys.exit(0 if all(e.lower().replace("-", "") == "utf8" for e in enc) else f"encodings {enc}")
        """), _exit0, variants=minimal),
        Check("venv", py("""
            import subprocess, sys, tempfile, venv
            d = tempfile.mkdtemp() + "/v"
            venv.create(d, with_pip=False, symlinks=True)
            r = subprocess.run([d + "/bin/python", "-c",
                                "import sys; assert sys.prefix != sys.base_prefix; print(sys.prefix)"])
            sys.exit(r.returncode)
        """), _exit0, variants=minimal),
    ]


def freethreaded_script(modules: list[str]) -> str:
    """Python code: the interpreter is the free-threaded build and runs without the GIL."""
    return f"""
        import importlib, sys, sysconfig
        assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1, "not a --disable-gil build"
        assert sys.abiflags == "t", sys.abiflags
        for m in {modules!r}:
            importlib.import_module(m)
        assert not sys._is_gil_enabled(), "the GIL is enabled"
        print("free-threaded", sys.version)
    """


def _wheel_script() -> str:
    return textwrap.dedent("""\
        cd "$(mktemp -d)"
        mkdir -p pkg && cd pkg
        cat > spam.c <<'EOF'
        #define PY_SSIZE_T_CLEAN
        #include <Python.h>
        static PyObject *add(PyObject *s, PyObject *a) {
          long x, y; if (!PyArg_ParseTuple(a, "ll", &x, &y)) return NULL;
          return PyLong_FromLong(x + y);
        }
        static PyMethodDef M[] = {{"add", add, METH_VARARGS, ""}, {NULL, NULL, 0, NULL}};
        static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "spam", NULL, -1, M};
        PyMODINIT_FUNC PyInit_spam(void) { return PyModule_Create(&D); }
        EOF
        cat > setup.py <<'EOF'
        from setuptools import Extension, setup
        setup(name="spam", version="1.0", ext_modules=[Extension("spam", ["spam.c"])])
        EOF
        python3 -m build --wheel --outdir dist . > build.log 2>&1 || { tail -30 build.log; exit 1; }
        auditwheel repair --wheel-dir wheelhouse dist/*.whl
        ls wheelhouse
        python3 -m venv ../venv
        ../venv/bin/pip install --no-index --quiet wheelhouse/*.whl
        ../venv/bin/python -c "import spam; assert spam.add(2, 3) == 5; print('spam ok')"
    """)


EMULATED_ENV = {"PIP_NO_COMPILE": "1"}


def check_name(check: str, label: str | None) -> str:
    """Checks of a non-native platform carry it in their name: `stdlib-imports [linux/arm64]`."""
    return f"{check} [{label}]" if label else check


def _emulated_wheel_script() -> str:
    """The C extension compiled and linked with exactly the toolchain the interpreter's
    sysconfig names (CC, CFLAGS, CCSHARED, LDSHARED: what setuptools uses; a cross-built
    CPython must name the native gcc here, not the cross one), then imported. The wheel and
    auditwheel steps of the native check are pure Python, checked on the build platform."""
    spam = _wheel_script().split("cat > spam.c <<'EOF'\n", 1)[1].split("EOF\n", 1)[0]
    return textwrap.dedent("""\
        cd "$(mktemp -d)"
        cat > spam.c <<'EOF'
        """) + spam + textwrap.dedent("""\
        EOF
        v() { python3 -c "import sysconfig; print(sysconfig.get_config_var('$1') or '')"; }
        inc=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
        suffix=$(v EXT_SUFFIX)
        echo "CC=$(v CC) LDSHARED=$(v LDSHARED)"
        $(v CC) $(v CFLAGS) $(v CCSHARED) -I"$inc" -c spam.c -o spam.o
        $(v LDSHARED) spam.o -o "spam$suffix"
        python3 -c "import spam; assert spam.add(2, 3) == 5; print('spam ok', spam.__file__)"
    """)


def run_checks(engine: Engine, image_ref: str, img: PlannedImage, *, uid: int, prefix: str,
               tls_url: str, timeout: float = 600, platform: str | None = None,
               label: str | None = None) -> list[CheckResult]:
    tls_host = urllib.parse.urlparse(tls_url).hostname or "pypi.org"
    results = []
    # Under emulation (a platform other than the build host's: ``label`` set) pip skips
    # compiling bytecode: byte-compiling pip's ~1000 files under QEMU took minutes per venv.
    env = EMULATED_ENV if label else None
    for check in checks_for(img, uid=uid, prefix=prefix, tls_host=tls_host, emulated=bool(label)):
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
