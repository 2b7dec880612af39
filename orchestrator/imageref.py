"""The one parser of image references: ``[host[:port]/]repository[:tag][@sha256:...]``.

Docker's rules (distribution/reference, ``ParseNormalizedNamed``): the first path component
is a registry host when it has a "." or a ":" or is "localhost"; otherwise the image is on
Docker Hub (``docker.io``, whose official images live under ``library/``). The tag is what
follows the last ":" of the last path component, the digest what follows "@".
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io",)  # the same registry under its v1 name


@dataclass(frozen=True)
class ImageRef:
    name: str  # as written, without :tag and @digest ("debian", "127.0.0.1:5000/e2e/ubuntu")
    host: str  # the registry: host[:port]; "docker.io" when the reference names none
    repository: str  # the path in that registry ("library/debian" for Docker Hub's "debian")
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """What the registry's manifests endpoint takes: the digest, else the tag (or latest)."""
        return self.digest or self.tag or "latest"

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"


def parse(ref: str) -> ImageRef:
    """``127.0.0.1:5000/org/python:3.13@sha256:..`` -> ImageRef(host="127.0.0.1:5000",
    repository="org/python", tag="3.13", digest="sha256:.."); ``debian`` -> docker.io,
    library/debian, no tag (``reference`` is "latest")."""
    written, _, digest = ref.partition("@")
    head, slash, last = written.rpartition("/")
    tag = ""
    if ":" in last:
        last, _, tag = last.partition(":")
    name = f"{head}{slash}{last}"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, name
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImageRef(name, host, path, tag, digest)
