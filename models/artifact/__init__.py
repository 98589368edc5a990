"""The compile side of a deployable artifact: one shared library holding every kernel
and the network's call sequence, the weights beside it, a manifest (docs/deploy.md).
The runtime that loads it is the `deploy` package."""

from models.artifact.export import ArtifactInfo, export_artifact

__all__ = ["ArtifactInfo", "export_artifact"]
