"""Render images.yaml + images.lock into one Dockerfile per distro and a docker-bake.json.

Pure and deterministic: the same inputs give the same bytes, and nothing here touches the
network, the engine or the clock. ``templates`` (the Jinja environment over stages/*.j2),
``units`` (the CPython builds and a profile's build args), ``dockerfile`` (a distro's
template context), ``bake`` (docker-bake.json), ``files`` (everything at once; write and
check the output dir), ``closure`` (the stages a target is built from).
"""

from orchestrator.render.closure import stage_closure
from orchestrator.render.files import check, render_all, stale, write
from orchestrator.render.units import profile_args

__all__ = ["check", "profile_args", "render_all", "stage_closure", "stale", "write"]
