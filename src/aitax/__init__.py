"""aitax: profile ML inference pipelines and rank what to fix first."""

from aitax.markers import STANDARD_STAGES, current_stage, request, stage

__version__ = "0.1.0"

__all__ = ["STANDARD_STAGES", "__version__", "current_stage", "request", "stage"]
