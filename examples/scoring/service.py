"""Naive scoring service: one breast cancer sample scored per request, with aitax markers.

Each request runs its own SQL query, derives features row by row in pandas, calls
predict_proba on a single row and logs the whole feature vector as indented JSON.
The request stream repeats a few hot samples many times, so a cache would serve
most fetches. service_optimized.py fixes all of this with the same results.
"""

from __future__ import annotations

import sys

import feature_engineering
import pipeline
from pipeline import ServiceContext

import aitax


def serve_request(context: ServiceContext, sample_id: int) -> float:
    """Score one sample and return its malignant probability."""
    with aitax.request():
        with aitax.stage("feature_fetch", key=sample_id):
            raw = pipeline.fetch_row(context.connection, sample_id)

        with aitax.stage("feature_compute"):
            features = feature_engineering.compute_features_rowwise(raw, context.training_stats)

        with aitax.stage("inference"):
            probability = pipeline.predict_one(context.model, features)

        with aitax.stage("logging"):
            pipeline.log_request(sample_id, raw, features, probability)

    return probability


def serve(context: ServiceContext) -> list[float]:
    return [serve_request(context, sample_id) for sample_id in context.sample_ids]


def main(argv: list[str] | None = None) -> int:
    return pipeline.run_service(argv, __doc__.splitlines()[0], "service.log", serve)


if __name__ == "__main__":
    sys.exit(main())
