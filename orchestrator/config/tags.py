"""The tags section of images.yaml: the moving and immutable tag templates, the default
distro and method behind the short tags, the method suffixes."""

from __future__ import annotations

from pydantic import Field

from orchestrator.config.axes import Method
from orchestrator.config.base import FrozenModel

TAG_FIELDS = ("minor", "version", "variant", "distro", "method", "date")


class TagTemplate(FrozenModel):
    template: str
    only_default: bool = Field(
        False, description="Only for the default distro and method (e.g. 3.13-runtime)"
    )


class MinorDefault(FrozenModel):
    """Where a minor's short tags (3.12-runtime) come from when not from the default distro."""

    distro: str
    method: Method | None = Field(
        None, description="Default: tags.default_method if the distro has it for this minor, "
        "else the first of the distro's methods that it has")


class Tags(FrozenModel):
    default_distro: str
    default_method: Method = "source"
    defaults: dict[str, MinorDefault] = Field(
        default_factory=dict,
        description='Per minor ("3.12", "3.14t"): the distro (and method) behind its short tags, '
        "for a minor the default distro does not carry (e.g. 3.12 only as noble's deadsnakes build)")
    method_suffix: dict[Method, str] = Field({  # a mutable default: see config.model's profiles
        "source": "",
        "python-build": "pybuild",
        "deadsnakes": "deadsnakes",
    })
    moving: tuple[TagTemplate, ...]
    # The date inside the version (3.13.15.20261121-runtime-bookworm): Renovate and Dependabot
    # read the text after the first "-" as a compatibility suffix (docs/tags-and-renovate.md).
    immutable: str = "{version}.{date}-{variant}-{distro}{method}"
    date_format: str = "%Y%m%d"
