"""The image engine: the ``Engine`` protocol and its result types, the BuildKit log parser.

The Docker implementation is ``orchestrator.engine.docker_engine.DockerEngine`` (the only
module that imports docker-py and python-on-whales); it is imported only where an engine is
created, so that the rest of the package depends on the protocol alone.
"""

from orchestrator.engine.buildlog import BuildLog, failed_stage, is_progress_line
from orchestrator.engine.types import BuildFailed, BuildOutcome, Engine, ImageInfo, Mount, RunOutcome

__all__ = ["BuildFailed", "BuildLog", "BuildOutcome", "Engine", "ImageInfo", "Mount",
           "RunOutcome", "failed_stage", "is_progress_line"]
