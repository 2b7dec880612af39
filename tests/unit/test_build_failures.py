# ruff: noqa: E501  (log lines are quoted as BuildKit writes them)
"""What a failed build says: the failing stage and the cause, from BuildKit's plain log."""

from __future__ import annotations

from pathlib import Path

from orchestrator.engine import BuildLog
from orchestrator.pipeline import _explain_build_failure, _failed_stage

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
    stage = _failed_stage(log)
    assert stage == "python-3.13-source"
    summary = _summary(COMPILE_ERROR)
    assert "collect2: error: ld returned 1 exit status" in summary
    assert "--checksum" not in summary  # step headers and the Dockerfile excerpt are not evidence
    message = _explain_build_failure(summary, stage)
    assert message.startswith("stage python-3.13-source failed\n")
    assert "sha256 pinned" not in message


def test_a_checksum_mismatch_is_explained(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text(CHECKSUM_ERROR)
    stage = _failed_stage(log)
    assert stage == "python-3.13-source"
    message = _explain_build_failure(_summary(CHECKSUM_ERROR), stage)
    assert message.startswith("a downloaded source does not match the sha256 pinned in "
                              "images.lock (stage python-3.13-source)")
    assert "digest mismatch sha256:0d1f9c2b" in message
