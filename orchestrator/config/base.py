"""What every section model of images.yaml shares: the frozen model base (unknown keys
refused) and the pattern of a name (a distro, the org, the runtime user)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
