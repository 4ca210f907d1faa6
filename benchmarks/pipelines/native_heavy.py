"""Native-code pipeline: batched NumPy feature transforms and a NumPy MLP's predictions.

Each batch is a large float32 array that is standardized, passed through a
two-layer perceptron (matrix products, ReLU, softmax) and ranked with
argpartition. Nearly all of the time is spent in compiled NumPy code, because
each batch makes only a few dozen Python calls. The model is NumPy only because importing
scikit-learn alone takes seconds of pure-Python work, which would dilute the
native share of a short run.

Example: python benchmarks/pipelines/native_heavy.py --batches 25
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

DEFAULT_BATCHES = 25
BATCH_ROWS = 50_000
INPUT_COLUMNS = 64
HIDDEN_UNITS = 128
CLASSES = 4
TOP_K = 100
SEED = 5


@dataclass(frozen=True)
class Perceptron:
    """Weights of a two-layer perceptron with random, fixed values."""

    hidden_weights: np.ndarray
    hidden_bias: np.ndarray
    output_weights: np.ndarray
    output_bias: np.ndarray


def make_model(generator: np.random.Generator) -> Perceptron:
    scale = 1.0 / np.sqrt(INPUT_COLUMNS)
    return Perceptron(
        hidden_weights=(generator.standard_normal((INPUT_COLUMNS, HIDDEN_UNITS)) * scale).astype(
            np.float32
        ),
        hidden_bias=np.zeros(HIDDEN_UNITS, dtype=np.float32),
        output_weights=generator.standard_normal((HIDDEN_UNITS, CLASSES)).astype(np.float32),
        output_bias=np.zeros(CLASSES, dtype=np.float32),
    )


def predict_proba(model: Perceptron, features: np.ndarray) -> np.ndarray:
    hidden = np.maximum(features @ model.hidden_weights + model.hidden_bias, 0.0)
    logits = hidden @ model.output_weights + model.output_bias
    logits -= logits.max(axis=1, keepdims=True)
    exponentials: np.ndarray = np.exp(logits)
    probabilities: np.ndarray = exponentials / exponentials.sum(axis=1, keepdims=True)
    return probabilities


def score_batch(model: Perceptron, batch: np.ndarray) -> np.ndarray:
    """Return the row indices of the batch's TOP_K most likely positives (class 0)."""
    standardized = (batch - batch.mean(axis=0)) / (batch.std(axis=0) + 1e-6)
    positive = predict_proba(model, standardized)[:, 0]
    return np.argpartition(positive, -TOP_K)[-TOP_K:]


def run(batches: int) -> int:
    """Score `batches` batches and return how many selected rows have an even index."""
    generator = np.random.default_rng(SEED)
    model = make_model(generator)

    even = 0
    for _ in range(batches):
        batch = generator.standard_normal((BATCH_ROWS, INPUT_COLUMNS), dtype=np.float32)
        even += int((score_batch(model, batch) % 2 == 0).sum())
    return even


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        type=int,
        default=DEFAULT_BATCHES,
        help=f"batches of {BATCH_ROWS} rows to score (default {DEFAULT_BATCHES})",
    )
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches {args.batches} is invalid; pass a positive count")

    even = run(args.batches)
    print(f"scored {args.batches * BATCH_ROWS} rows, {even} of the selected rows have even indices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
