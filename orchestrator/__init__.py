"""Base-image build orchestrator: images.yaml -> shared-stage Dockerfiles -> BuildKit -> registry."""

__version__ = "0.1.0"
