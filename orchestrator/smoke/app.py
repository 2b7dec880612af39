"""The downstream-app smoke check: a venv with a compiled dependency built in the dev image
runs in the runtime (or minimal) image, as an application team's two-stage Dockerfile does."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.engine import BuildFailed
from orchestrator.planning.plan import PlannedImage
from orchestrator.smoke.suite import CheckResult, check_name, python_home

if TYPE_CHECKING:
    from orchestrator.engine import Engine


# The downstream app's one dependency: a C extension. 3.0.3 is the first release with wheels for
# CPython 3.14 and 3.14t (cp314, cp314t; 3.0.2 has none, so the arm64 check, which installs
# the wheel under emulation, found no distribution for 3.14).
APP_DEPENDENCY = "markupsafe==3.0.3"


def downstream_app(dev_ref: str, runtime_ref: str, prefix: str, *, emulated: bool = False,
                   minimal: bool = False) -> str:
    """A two-stage app: venv with a compiled dependency built in dev, run in runtime (or in
    minimal: its entrypoint, python3, is replaced by the venv's python). The dev
    image's pip installs into the venv (`pip --python`): no copy of pip in the venv to
    install, and no bytecode to compile, which under QEMU (arm64) took minutes. Natively the
    dependency is compiled from source in dev; under emulation its wheel is used (building it
    took 6 minutes under QEMU; dev-c-extension-wheel compiles a C extension there instead)."""
    run = "ENTRYPOINT" if minimal else "CMD"
    return textwrap.dedent(f"""\
        FROM {dev_ref} AS build
        USER root
        RUN python3 -m venv --without-pip /app/venv \\
         && PIP_NO_COMPILE=1 python3 -m pip --python /app/venv/bin/python install --no-cache-dir \\
              {"--only-binary" if emulated else "--no-binary"} markupsafe {APP_DEPENDENCY} \\
         && /app/venv/bin/python -c "import markupsafe._speedups"
        FROM {runtime_ref}
        COPY --from=build /app/venv /app/venv
        {run} ["/app/venv/bin/python", "-c", "import markupsafe, markupsafe._speedups as s, sys; \\
        print('app ok', sys.prefix, s.__file__); assert sys.base_prefix == '{prefix}'"]
    """)


def app_check(engine: Engine, dev_ref: str, runtime_ref: str, runtime: PlannedImage,
              prefix: str, network: str | None, log_dir: Path, platform: str | None = None,
              label: str | None = None) -> CheckResult:
    name = check_name(f"dev-venv-runs-in-{runtime.variant}", label)
    arch = (platform or "native").rsplit("/", 1)[-1]
    tag = f"orchestrator-app-check/{runtime.id}:{arch}"
    try:
        engine.build_dockerfile(downstream_app(dev_ref, runtime_ref, python_home(runtime, prefix),
                                               emulated=bool(label), minimal=not runtime.has_shell),
                                tag,
                                network=network, platforms=[platform] if platform else None,
                                log_path=log_dir / f"{runtime.id}.{arch}.app.log")
    except BuildFailed as exc:
        return CheckResult(runtime.id, name, False, "app build failed", exc.summary, 0.0)
    try:
        out = engine.run(tag, [], timeout=600, platform=platform)
    finally:
        engine.remove(tag)
    ok = out.exit_code == 0 and "app ok" in out.output
    return CheckResult(runtime.id, name, ok,
                       "" if ok else f"exit code {out.exit_code}", out.output, out.seconds)
