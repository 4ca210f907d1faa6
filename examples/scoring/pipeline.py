"""Shared parts of the scoring services: build-dir layout, loading, running and naive steps.

The naive steps (`fetch_row`, `predict_one`, `log_request`, and
`feature_engineering.compute_features_rowwise`) carry no aitax markers, so that
service.py can wrap them in stages and service_unmarked.py can run them bare.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import joblib
import pandas as pd
from feature_engineering import RAW_COLUMNS

DEFAULT_BUILD_DIR: Final = Path(__file__).resolve().parent / "build"
FEATURE_STORE_FILE: Final = "features.sqlite"
MODEL_FILE: Final = "model.joblib"
TRAINING_STATS_FILE: Final = "training_stats.json"
REQUESTS_FILE: Final = "requests.json"
BUILD_FILES: Final = (FEATURE_STORE_FILE, MODEL_FILE, TRAINING_STATS_FILE, REQUESTS_FILE)

FEATURE_TABLE: Final = "measurements"
ID_COLUMN: Final = "sample_id"

# Sized so that service.py runs for 8 to 15 s on a 2-core machine. Measured on a 2-core
# Linux VM that other processes kept busy: 12 to 15 ms per request, 10.5 to 12 s in all.
DEFAULT_REQUESTS: Final = 600

# Column of predict_proba for the malignant class: load_breast_cancer codes malignant as 0.
MALIGNANT_CLASS: Final = 0

# Per-request log written to the build dir. It is a named logger, not __name__, because
# the service scripts run as __main__ and must all write to the same channel.
request_log = logging.getLogger("scoring.requests")


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options shared by the service scripts."""

    build_dir: Path
    requests: int
    predictions_out: Path | None


@dataclass(slots=True)
class ServiceContext:
    """Resources a service loads before serving: the store, the model and the request stream."""

    connection: sqlite3.Connection
    model: Any
    training_stats: pd.DataFrame
    sample_ids: list[int]


class BuildDirError(Exception):
    """Raised when the build dir lacks a file from prepare.py or records too few requests."""


def parse_options(argv: list[str] | None, description: str) -> Options:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"number of requests to serve from the recorded stream (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=DEFAULT_BUILD_DIR,
        help="directory that prepare.py wrote (default examples/scoring/build)",
    )
    parser.add_argument(
        "--predictions-out",
        type=Path,
        help="also write the sample ids and malignant probabilities to this JSON file",
    )
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error(f"--requests {args.requests} is invalid; pass a positive count")
    return Options(args.build_dir, args.requests, args.predictions_out)


def check_build_dir(build_dir: Path) -> None:
    missing = [name for name in BUILD_FILES if not (build_dir / name).is_file()]
    if not missing:
        return

    prepare = "python examples/scoring/prepare.py"
    if build_dir.resolve() != DEFAULT_BUILD_DIR:
        prepare += f" --build-dir {build_dir}"
    raise BuildDirError(f"{build_dir / missing[0]} not found; run {prepare} first")


def load_training_stats(build_dir: Path) -> pd.DataFrame:
    """Load the per-column training mean and standard deviation, indexed by raw column."""
    with (build_dir / TRAINING_STATS_FILE).open(encoding="utf-8") as file:
        stats = json.load(file)
    return pd.DataFrame.from_dict(stats, orient="index").loc[list(RAW_COLUMNS)]


def load_request_stream(build_dir: Path) -> list[int]:
    with (build_dir / REQUESTS_FILE).open(encoding="utf-8") as file:
        return [int(sample_id) for sample_id in json.load(file)["sample_ids"]]


def load_context(build_dir: Path, requests: int) -> ServiceContext:
    """Open the feature store and load the model, the training stats and the first requests.

    Raises BuildDirError if prepare.py has not written the build dir, or if the
    recorded stream is shorter than `requests`.
    """
    check_build_dir(build_dir)

    stream = load_request_stream(build_dir)
    if requests > len(stream):
        raise BuildDirError(
            f"--requests {requests} exceeds the {len(stream)} requests recorded in "
            f"{build_dir / REQUESTS_FILE}; pass at most {len(stream)}"
        )

    return ServiceContext(
        connection=sqlite3.connect(build_dir / FEATURE_STORE_FILE),
        model=joblib.load(build_dir / MODEL_FILE),
        training_stats=load_training_stats(build_dir),
        sample_ids=stream[:requests],
    )


@contextmanager
def request_log_file(path: Path) -> Iterator[None]:
    """Send `request_log` records to `path`, replacing the file, until the block ends.

    The handler is removed on exit, so a profiler that runs the service several
    times in one process does not stack handlers.
    """
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    try:
        yield
    finally:
        request_log.removeHandler(handler)
        handler.close()


def write_predictions(path: Path, sample_ids: list[int], probabilities: list[float]) -> None:
    payload = {"sample_ids": sample_ids, "malignant_probabilities": probabilities}
    path.write_text(json.dumps(payload), encoding="utf-8")


def run_service(
    argv: list[str] | None,
    description: str,
    log_file: str,
    serve: Callable[[ServiceContext], list[float]],
) -> int:
    """Parse options, load the build dir, call `serve` and print a one-line summary.

    `serve` returns one malignant probability per request, in request order, and
    writes its request log to `log_file` in the build dir. Returns the exit status:
    0 on success, 2 when the build dir is missing or records too few requests.
    """
    started = time.perf_counter()
    options = parse_options(argv, description)

    try:
        context = load_context(options.build_dir, options.requests)
    except BuildDirError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    serve_started = time.perf_counter()
    try:
        with request_log_file(options.build_dir / log_file):
            probabilities = serve(context)
    finally:
        context.connection.close()
    serve_s = time.perf_counter() - serve_started

    if options.predictions_out is not None:
        write_predictions(options.predictions_out, context.sample_ids, probabilities)

    wall_s = time.perf_counter() - started
    print(
        f"served {len(probabilities)} requests in {serve_s:.2f} s "
        f"({1000 * serve_s / len(probabilities):.2f} ms per request), "
        f"{wall_s:.2f} s with setup; log: {options.build_dir / log_file}"
    )
    return 0


def fetch_row(connection: sqlite3.Connection, sample_id: int) -> pd.DataFrame:
    """Read one sample's raw measurements with its own query, as a one-row DataFrame."""
    return pd.read_sql_query(
        f"SELECT * FROM {FEATURE_TABLE} WHERE {ID_COLUMN} = ?", connection, params=(sample_id,)
    )


def predict_one(model: Any, features: pd.DataFrame) -> float:
    return float(model.predict_proba(features)[0, MALIGNANT_CLASS])


def log_request(
    sample_id: int, raw: pd.DataFrame, features: pd.DataFrame, probability: float
) -> None:
    """Log the whole request (raw measurements, derived features, prediction) as indented JSON."""
    record = {
        "event": "prediction",
        ID_COLUMN: sample_id,
        "measurements": raw[list(RAW_COLUMNS)].iloc[0].to_dict(),
        "features": features.iloc[0].to_dict(),
        "malignant_probability": probability,
    }
    request_log.info("request %s", json.dumps(record, indent=2, sort_keys=True))
