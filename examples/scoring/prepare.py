"""Build the scoring example's feature store, model and request stream.

Uses the Wisconsin diagnostic breast cancer data that ships inside scikit-learn
(sklearn.datasets.load_breast_cancer: 569 samples, 30 measurements), so nothing
is downloaded. Every run rebuilds the same files from fixed seeds, replacing each
file atomically, so running it twice leaves the same build dir.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import joblib
import numpy as np
import pandas as pd
from feature_engineering import RAW_COLUMNS, compute_features
from pipeline import (
    DEFAULT_BUILD_DIR,
    FEATURE_STORE_FILE,
    FEATURE_TABLE,
    ID_COLUMN,
    MALIGNANT_CLASS,
    MODEL_FILE,
    REQUESTS_FILE,
    TRAINING_STATS_FILE,
)
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

SPLIT_SEED: Final = 20240601
MODEL_SEED: Final = 0
REQUEST_STREAM_SEED: Final = 7
TEST_FRACTION: Final = 0.25
# Trees in the forest: enough for a stable model, few enough that single-row inference
# leaves the other stages of the naive service a real share of its time.
FOREST_SIZE: Final = 30
REQUEST_STREAM_LENGTH: Final = 10_000
# Popularity of held-out samples follows a Zipf law, p(rank k) proportional to k ** -1.1,
# so a few samples take most requests, as hot keys do in production traffic.
ZIPF_EXPONENT: Final = 1.1


def load_measurements() -> tuple[pd.DataFrame, pd.Series]:
    """Load the dataset with snake_case column names, indexed by sample id (the row number)."""
    dataset = load_breast_cancer(as_frame=True)
    raw = dataset.data.rename(columns=lambda name: str(name).replace(" ", "_"))
    if tuple(raw.columns) != RAW_COLUMNS:
        raise RuntimeError(
            f"dataset columns {list(raw.columns)} do not match RAW_COLUMNS; "
            "update RAW_COLUMNS in feature_engineering.py"
        )
    raw.index.name = ID_COLUMN
    return raw, dataset.target


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    write(temporary)
    os.replace(temporary, path)


def write_feature_store(path: Path, raw: pd.DataFrame) -> None:
    """Write every sample's raw measurements to one SQLite table keyed by sample id."""
    columns = ", ".join(f"{column} REAL NOT NULL" for column in RAW_COLUMNS)
    placeholders = ", ".join("?" * (len(RAW_COLUMNS) + 1))
    rows = [(int(sample_id), *map(float, values)) for sample_id, values in raw.iterrows()]

    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(
                f"CREATE TABLE {FEATURE_TABLE} ({ID_COLUMN} INTEGER PRIMARY KEY, {columns})"
            )
            connection.executemany(f"INSERT INTO {FEATURE_TABLE} VALUES ({placeholders})", rows)
    finally:
        connection.close()


def training_stats(train: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Return each raw column's training mean and population standard deviation."""
    means = train.mean()
    stds = train.std(ddof=0)
    return {
        column: {"mean": float(means[column]), "std": float(stds[column])} for column in RAW_COLUMNS
    }


def train_model(features: pd.DataFrame, target: pd.Series) -> RandomForestClassifier:
    """Fit a random forest, whose single-row predict_proba runs in the calling thread.

    HistGradientBoostingClassifier (scikit-learn 1.9) starts OpenMP threads even for
    one row. On a 2-core VM its single-row predict_proba took 3 ms when the machine
    was idle and over 50 ms while other processes kept the cores busy, which swamped
    the other stages of the naive service.
    """
    model = RandomForestClassifier(n_estimators=FOREST_SIZE, random_state=MODEL_SEED)
    model.fit(features, target)
    return model


def draw_request_stream(held_out_ids: list[int]) -> list[int]:
    """Draw the request stream from the held-out ids with Zipf-distributed popularity."""
    rng = np.random.default_rng(REQUEST_STREAM_SEED)
    by_popularity = rng.permutation(held_out_ids)
    weights = np.arange(1, len(by_popularity) + 1, dtype=float) ** -ZIPF_EXPONENT
    draws = rng.choice(by_popularity, size=REQUEST_STREAM_LENGTH, p=weights / weights.sum())
    return [int(sample_id) for sample_id in draws]


def parse_build_dir(argv: list[str] | None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help="directory to write the feature store, model and request stream to "
        "(default examples/scoring/build)",
    )
    build_dir: Path = parser.parse_args(argv).build_dir
    return build_dir


def main(argv: list[str] | None = None) -> int:
    build_dir = parse_build_dir(argv)
    build_dir.mkdir(parents=True, exist_ok=True)

    raw, target = load_measurements()
    train_ids, test_ids = train_test_split(
        raw.index, test_size=TEST_FRACTION, stratify=target, random_state=SPLIT_SEED
    )
    stats = training_stats(raw.loc[train_ids])
    stats_frame = pd.DataFrame.from_dict(stats, orient="index")

    model = train_model(compute_features(raw.loc[train_ids], stats_frame), target.loc[train_ids])
    test_features = compute_features(raw.loc[test_ids], stats_frame)
    accuracy = accuracy_score(target.loc[test_ids], model.predict(test_features))
    malignant = model.predict_proba(test_features)[:, MALIGNANT_CLASS]
    auc = roc_auc_score(target.loc[test_ids] == MALIGNANT_CLASS, malignant)

    stream = draw_request_stream(sorted(int(sample_id) for sample_id in test_ids))
    stream_record = {
        "seed": REQUEST_STREAM_SEED,
        "zipf_exponent": ZIPF_EXPONENT,
        "sample_ids": stream,
    }

    write_atomically(build_dir / FEATURE_STORE_FILE, lambda path: write_feature_store(path, raw))
    write_atomically(build_dir / MODEL_FILE, lambda path: joblib.dump(model, path))
    write_atomically(
        build_dir / TRAINING_STATS_FILE,
        lambda path: path.write_text(json.dumps(stats, indent=2), encoding="utf-8"),
    )
    write_atomically(
        build_dir / REQUESTS_FILE,
        lambda path: path.write_text(json.dumps(stream_record), encoding="utf-8"),
    )

    print(
        f"Wrote {build_dir}: {len(raw)} samples in {FEATURE_STORE_FILE}, "
        f"{type(model).__name__} in {MODEL_FILE} (held-out accuracy {accuracy:.3f}, "
        f"ROC AUC {auc:.3f}), {len(stream)} requests over {len(set(stream))} "
        f"held-out samples in {REQUESTS_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
