"""orchestrator.imageref: the one parser of image references, with docker's rules."""

from __future__ import annotations

import pytest

from orchestrator import imageref
from orchestrator.imageref import ImageRef

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("ref", "want"), [
    ("debian", ImageRef("debian", "docker.io", "library/debian")),
    ("debian:bookworm-slim", ImageRef("debian", "docker.io", "library/debian", "bookworm-slim")),
    ("library/debian:bookworm-slim",
     ImageRef("library/debian", "docker.io", "library/debian", "bookworm-slim")),
    ("docker.io/library/debian:bookworm-slim",
     ImageRef("docker.io/library/debian", "docker.io", "library/debian", "bookworm-slim")),
    ("docker.io/python", ImageRef("docker.io/python", "docker.io", "library/python")),
    ("index.docker.io/org/python:3.13",
     ImageRef("index.docker.io/org/python", "docker.io", "org/python", "3.13")),
    ("org/python:3.13", ImageRef("org/python", "docker.io", "org/python", "3.13")),
    ("127.0.0.1:5000/e2e/ubuntu:noble", ImageRef("127.0.0.1:5000/e2e/ubuntu", "127.0.0.1:5000",
                                                  "e2e/ubuntu", "noble")),
    ("127.0.0.1:5000/e2e/ubuntu", ImageRef("127.0.0.1:5000/e2e/ubuntu", "127.0.0.1:5000", "e2e/ubuntu")),
    ("localhost/python:3", ImageRef("localhost/python", "localhost", "python", "3")),
    ("Registry/python", ImageRef("Registry/python", "Registry", "python")),
    (f"registry.test/org/python@{D}", ImageRef("registry.test/org/python", "registry.test", "org/python",
                                                "", D)),
    (f"registry.test:443/org/python:3.13-runtime@{D}",
     ImageRef("registry.test:443/org/python", "registry.test:443", "org/python", "3.13-runtime", D)),
])
def test_references_parse_as_docker_reads_them(ref: str, want: ImageRef) -> None:
    assert imageref.parse(ref) == want


def test_the_reference_a_registry_takes() -> None:
    assert imageref.parse("debian").reference == "latest"
    assert imageref.parse("debian:12").reference == "12"
    assert imageref.parse(f"debian:12@{D}").reference == D
    assert imageref.parse(f"debian@{D}").tag_or_latest == "latest"
