"""Naive scoring service without aitax markers, for automatic stage classification.

Runs the same steps as service.py in the same order, but calls no aitax marker, so
a profiler must infer the stages from the call stacks alone.
"""

from __future__ import annotations

import sys

import feature_engineering
import pipeline
from pipeline import ServiceContext


def serve_request(context: ServiceContext, sample_id: int) -> float:
    """Score one sample and return its malignant probability."""
    raw = pipeline.fetch_row(context.connection, sample_id)
    features = feature_engineering.compute_features_rowwise(raw, context.training_stats)
    probability = pipeline.predict_one(context.model, features)
    pipeline.log_request(sample_id, raw, features, probability)
    return probability


def serve(context: ServiceContext) -> list[float]:
    return [serve_request(context, sample_id) for sample_id in context.sample_ids]


def main(argv: list[str] | None = None) -> int:
    return pipeline.run_service(argv, __doc__.splitlines()[0], "service_unmarked.log", serve)


if __name__ == "__main__":
    sys.exit(main())
