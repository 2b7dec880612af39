"""The production push, through the REAL dockerd, to the local registry (127.0.0.1:5000) behind the
fault proxy: DockerEngine.push with its own retries (4 attempts, doubling backoff) and an injected
sleep that records instead of waiting.

No image is built: two one-file images come from ``docker import`` of tiny tars (a distinct
file each, so distinct digests). The first is published under a tag; the second, under the same
tag, meets a 500, a stall and dropped connections on the manifest PUT, the one request that
moves a tag (dockerd has no retry of its own: each fault fails one attempt of the engine). The
push fails after four attempts and the tag still names the first image, read with the project's
registry client straight from the registry before, during the stall, and after. With the faults
gone the same push lands, so it was the faults that failed it.

dockerd tries HTTPS first even for an insecure (127.0.0.0/8) registry and falls back to HTTP when
the answer to its TLS hello is plain HTTP: the proxy answers that hello as Go's HTTP server does
(action "not-http"). Skipped only when dockerd or the registry is not there and CI is not set.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import EngineError, RegistryError
from orchestrator.registry import Registry
from tests import require
from tests.fakes.faultproxy import FaultProxy, Rule

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

REGISTRY = "127.0.0.1:5000"
MANIFEST_PUT = r"/manifests/"
TAG = "3.13-runtime"


def _tiny_tar(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(content), 0
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _docker(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def engine_and_registry() -> None:
    """dockerd answers and the registry serves /v2/; else a skip (locally) or a failure (CI)."""
    try:
        DockerEngine()
    except EngineError as exc:
        require.unavailable(str(exc), require.PROVISION)
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except urllib.error.URLError as exc:
        require.unavailable(f"registry {REGISTRY} does not answer: {exc.reason}", require.PROVISION)
    if status not in (200, 401):
        pytest.fail(f"registry {REGISTRY} answered HTTP {status} on /v2/")


@dataclass
class Setup:
    proxy: FaultProxy
    engine: DockerEngine
    sleeps: list[float]
    direct: Registry  # straight to the registry, for reading the tag
    repo: str
    ref: str  # the tag, named through the proxy
    imported: list[str]  # image ids, removed at the end

    def published(self) -> dict[str, str | None]:
        return {t: self.direct.digest(self.repo, t) for t in self.direct.tags(self.repo)}

    def import_image(self, content: bytes) -> str:
        """A one-file image tagged ``ref`` (docker import, not a build); its image id."""
        image_id = _docker("import", "--message", "push fault test", "-", self.ref,
                           stdin=_tiny_tar(content))
        self.imported.append(image_id)
        return image_id


@pytest.fixture
def setup(engine_and_registry: None) -> Iterator[Setup]:
    repo = f"push-faults-test/{uuid.uuid4().hex[:12]}"
    sleeps: list[float] = []
    direct = Registry(REGISTRY, attempts=2, backoff=0.2)
    with FaultProxy(REGISTRY, io_timeout=30, max_hold=60) as proxy:
        s = Setup(proxy, DockerEngine(sleep=sleeps.append), sleeps, direct, repo,
                  f"{proxy.address}/{repo}:{TAG}", [])
        try:
            yield s
        finally:
            for image_id in s.imported:
                subprocess.run(["docker", "rmi", "--force", image_id], capture_output=True,
                               timeout=60, check=False)
    for digest in {d for d in s.published().values() if d}:  # best effort
        with contextlib.suppress(RegistryError):
            direct.request("DELETE", f"/v2/{repo}/manifests/{digest}")
    direct.close()


def test_a_push_through_dockerd_retries_a_500_a_stall_and_drops_then_leaves_the_tag(
        setup: Setup) -> None:
    s = setup
    s.import_image(b"first " + uuid.uuid4().bytes)
    first = s.engine.push(s.ref)
    assert s.published() == {TAG: first}
    assert s.sleeps == []
    assert s.proxy.count("PUT", MANIFEST_PUT) == 1
    assert s.proxy.count(action="not-http") >= 1, "dockerd went to the proxy over HTTP at once?"

    s.import_image(b"second " + uuid.uuid4().bytes)
    server_error = s.proxy.add(Rule("status", method="PUT", path=MANIFEST_PUT, nth=1, status=500))
    stall = s.proxy.add(Rule("stall", method="PUT", path=MANIFEST_PUT, nth=2, then="reset"))
    dropped = s.proxy.add(Rule("reset", method="PUT", path=MANIFEST_PUT, after=2))

    during_stall: dict[str, str | None] = {}

    def release_the_stall() -> None:
        """While dockerd's second manifest PUT is held, the tag still names the first image;
        then the held connection is dropped."""
        if s.proxy.wait_fired(stall, timeout=90):
            during_stall.update(s.published())
        stall.release.set()

    watcher = threading.Thread(target=release_the_stall, daemon=True)
    watcher.start()
    with pytest.raises(RegistryError, match=r"failed after 4 attempts") as failed:
        s.engine.push(s.ref)
    watcher.join(timeout=30)
    assert not watcher.is_alive()

    # every fault fired on cue, each failing one attempt of the engine; dockerd did not retry
    assert (server_error.fired, stall.fired, dropped.fired) == (1, 1, 2)
    puts = [r.action for r in s.proxy.records if r.method == "PUT" and "/manifests/" in r.target]
    assert puts == ["forward", "status", "stall+reset", "reset", "reset"]
    assert s.sleeps == [1.0, 2.0, 4.0]  # the doubling backoff, injected: nothing slept
    assert "connection reset by peer" in str(failed.value)  # the last attempt's drop
    assert during_stall == {TAG: first}
    assert s.published() == {TAG: first}, "a failed push moved or added a tag"
    attempted = re.search(r"manifest-(sha256:[0-9a-f]{64})", str(failed.value))
    assert attempted is not None, str(failed.value)
    assert s.direct.digest(s.repo, attempted.group(1)) is None, "the manifest landed untagged"

    # without the faults the same push lands: it was the faults that failed it
    s.proxy.clear()
    second = s.engine.push(s.ref)
    assert second == attempted.group(1) != first
    assert s.published() == {TAG: second}
    assert s.sleeps == [1.0, 2.0, 4.0]
