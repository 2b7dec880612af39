# ruff: noqa: E501  (log lines are quoted as BuildKit writes them)
"""What a failed build says: the failing stage and the cause, from BuildKit's plain log."""

from __future__ import annotations

from pathlib import Path

from orchestrator.engine import BuildLog, failed_stage
from orchestrator.release.build import explain_build_failure

# Shape of BuildKit 0.13's plain progress for a compile that fails after an ADD --checksum
# step succeeded (trimmed from a real log of this machine).
COMPILE_ERROR = """\
#4 [base 1/2] FROM 127.0.0.1:5000/debian:bookworm-slim@sha256:78e1bab35a7f
#4 CACHED
#7 [python-3.13-source 1/2] ADD --checksum=sha256:1e66a7945a48 http://127.0.0.1:8700/ftp/python/3.13.15/Python-3.13.15.tar.xz /usr/src/Python-3.13.15.tar.xz
#7 DONE 0.1s
#9 [build-deps 1/1] RUN apt-get update && apt-get install -y gcc make
#9 DONE 20.3s
#11 [python-3.13-source 2/2] RUN mkdir -p /usr/src/python  && ./configure --prefix=/opt/org/python/3.13
#11 166.0 /usr/bin/ld: Modules/arraymodule.o:(.data.rel+0x508): undefined reference to `Py_GenericAlias'
#11 166.1 collect2: error: ld returned 1 exit status
#11 166.1 make: *** [Makefile:3331: Modules/array.cpython-313-x86_64-linux-gnu.so] Error 1
#11 ERROR: process "/bin/bash -o pipefail -c mkdir -p /usr/src/python" did not complete successfully: exit code: 2
------
Dockerfile:156
--------------------
 155 |     # a comment
 156 | >>> RUN mkdir -p /usr/src/python \\
 157 | >>>  && ./configure --prefix=/opt/org/python/3.13 # --checksum in a comment
--------------------
ERROR: failed to solve: process "/bin/bash -o pipefail -c mkdir -p /usr/src/python" did not complete successfully: exit code: 2
"""

CHECKSUM_ERROR = """\
#4 [base 1/2] FROM 127.0.0.1:5000/debian:bookworm-slim@sha256:78e1bab35a7f
#4 CACHED
#7 [python-3.13-source 1/2] ADD --checksum=sha256:93e583f24345 http://127.0.0.1:41000/ftp/python/3.13.5/Python-3.13.5.tar.xz /usr/src/Python-3.13.5.tar.xz
#7 ERROR: digest mismatch sha256:0d1f9c2b: sha256:93e583f24345
------
ERROR: failed to solve: digest mismatch sha256:0d1f9c2b: sha256:93e583f24345
"""


def _summary(text: str) -> str:
    blog = BuildLog()
    for line in text.splitlines():
        blog.feed(line)
    return blog.error_summary()


def test_a_compile_error_names_its_stage_and_is_not_called_a_checksum_mismatch(
    tmp_path: Path,
) -> None:
    log = tmp_path / "build.log"
    log.write_text(COMPILE_ERROR)
    stage = failed_stage(log)
    assert stage == "python-3.13-source"
    summary = _summary(COMPILE_ERROR)
    assert "collect2: error: ld returned 1 exit status" in summary
    assert "--checksum" not in summary  # step headers and the Dockerfile excerpt are not evidence
    message = explain_build_failure(summary, stage)
    assert message.startswith("stage python-3.13-source failed\n")
    assert "sha256 pinned" not in message


def test_a_checksum_mismatch_is_explained(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text(CHECKSUM_ERROR)
    stage = failed_stage(log)
    assert stage == "python-3.13-source"
    message = explain_build_failure(_summary(CHECKSUM_ERROR), stage)
    assert message.startswith("a downloaded source does not match the sha256 pinned in "
                              "images.lock (stage python-3.13-source)")
    assert "digest mismatch sha256:0d1f9c2b" in message


# A multi-platform build: BuildKit puts the target platform before the stage name.
MULTI_PLATFORM = """\
#11 [linux/amd64 python-3.13-source 2/2] RUN --mount=type=bind,source=scripts,target=/usr/src/scripts     mkdir -p /usr/src/python  && ./configure --prefix=/opt/org/python/3.13
#11 DONE 301.2s
#19 [linux/arm64 python-3.13-source-cross-arm64 3/3] RUN --mount=type=bind,source=scripts,target=/usr/src/scripts     mkdir -p /usr/src/python  && CONFIG_SITE=/usr/src/scripts/config.site ./configure --host=aarch64-linux-gnu
#19 240.0 checking for --with-build-python... /opt/build-python/bin/python3.13
#19 250.0 configure: error: cannot run C compiled programs.
#19 ERROR: process "/bin/bash -o pipefail -c mkdir -p /usr/src/python" did not complete successfully: exit code: 1
#21 [linux/arm64 runtime-base 1/1] RUN apt-get update
#21 CACHED
"""


def test_multi_platform_step_headers_name_the_stage_not_the_platform(tmp_path: Path) -> None:
    blog = BuildLog()
    for line in MULTI_PLATFORM.splitlines():
        blog.feed(line)
    assert blog.compiled_stages() == ["python-3.13-source"]  # the cross compile failed
    assert ("runtime-base", "RUN apt-get update") in blog.cached
    log = tmp_path / "build.log"
    log.write_text(MULTI_PLATFORM)
    assert failed_stage(log) == "python-3.13-source-cross-arm64"
    done = MULTI_PLATFORM.replace("#19 ERROR: process", "#19 DONE 300.0s\n#99 ERROR: x")
    blog = BuildLog()
    for line in done.splitlines():
        blog.feed(line)
    assert blog.compiled_stages() == ["python-3.13-source", "python-3.13-source-cross-arm64"]
