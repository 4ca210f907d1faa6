"""Optimized scoring service: the same requests and results as service.py, served in batches.

Each batch fetches the samples it has not seen before with one SQL query and keeps
them in an in-memory cache, derives features with vectorized pandas, calls
predict_proba once and logs one summary line.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Final

import pandas as pd
import pipeline
from feature_engineering import compute_features
from pipeline import FEATURE_TABLE, ID_COLUMN, MALIGNANT_CLASS, ServiceContext

import aitax

# A batch's uncached ids go into one IN (...) list, so a batch stays below 999, the
# default limit on bound parameters in SQLite before version 3.32.
BATCH_SIZE: Final = 256


class FeatureCache:
    """Raw measurements of the samples fetched so far, indexed by sample id."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.rows = pd.DataFrame()

    def fetch(self, sample_ids: list[int]) -> tuple[pd.DataFrame, int]:
        """Query the store for the ids not cached yet, then return the rows of `sample_ids`.

        Also returns the number of ids queried. Rows come back in the order of `sample_ids`,
        with repeats.
        """
        missing = sorted(set(sample_ids).difference(self.rows.index))
        if missing:
            placeholders = ", ".join("?" * len(missing))
            fetched = pd.read_sql_query(
                f"SELECT * FROM {FEATURE_TABLE} WHERE {ID_COLUMN} IN ({placeholders})",
                self.connection,
                params=missing,
                index_col=ID_COLUMN,
            )
            self.rows = pd.concat([self.rows, fetched]) if len(self.rows) else fetched
        return self.rows.loc[sample_ids], len(missing)


def serve_batch(
    context: ServiceContext, cache: FeatureCache, batch_number: int, sample_ids: list[int]
) -> list[float]:
    """Score one batch of requests and return their malignant probabilities in order."""
    with aitax.request(size=len(sample_ids)):
        with aitax.stage("feature_fetch"):
            raw, queried = cache.fetch(sample_ids)

        with aitax.stage("feature_compute"):
            features = compute_features(raw, context.training_stats)

        with aitax.stage("inference"):
            probabilities = context.model.predict_proba(features)[:, MALIGNANT_CLASS]

        with aitax.stage("logging"):
            pipeline.request_log.info(
                "batch %d: %d requests, %d distinct samples, %d fetched from the store, "
                "mean malignant probability %.4f",
                batch_number,
                len(sample_ids),
                raw.index.nunique(),
                queried,
                probabilities.mean(),
            )

    return [float(probability) for probability in probabilities]


def serve(context: ServiceContext) -> list[float]:
    cache = FeatureCache(context.connection)
    probabilities: list[float] = []
    for start in range(0, len(context.sample_ids), BATCH_SIZE):
        batch = context.sample_ids[start : start + BATCH_SIZE]
        probabilities.extend(serve_batch(context, cache, start // BATCH_SIZE, batch))
    return probabilities


def main(argv: list[str] | None = None) -> int:
    return pipeline.run_service(argv, __doc__.splitlines()[0], "service_optimized.log", serve)


if __name__ == "__main__":
    sys.exit(main())
