"""The image engine: the ``Engine`` protocol and its result types, the BuildKit log parser.

The Docker implementation is ``orchestrator.engine.docker_engine.DockerEngine`` (BuildKit
builds through python-on-whales) on its base ``docker_store.DockerStore`` (images, containers
and pushes through docker-py), the only modules that import a Docker client; it is imported
only where an engine is created, so that the rest of the package depends on the protocol alone.
"""

from orchestrator.engine.buildlog import BuildLog, failed_stage, is_progress_line
from orchestrator.engine.types import BuildFailed, BuildOutcome, Engine, ImageInfo, Mount, RunOutcome

__all__ = ["BuildFailed", "BuildLog", "BuildOutcome", "Engine", "ImageInfo", "Mount",
           "RunOutcome", "failed_stage", "is_progress_line"]
