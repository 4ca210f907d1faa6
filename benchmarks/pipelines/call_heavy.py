"""Call-heavy pipeline: score synthetic card transactions one row at a time in pandas.

Every row goes through DataFrame.iterrows and a chain of small Python functions,
so the run makes millions of Python calls and spends little time in native code.
This is the pipeline where a tracing profiler costs the most.

Example: python benchmarks/pipelines/call_heavy.py --rows 20000
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pandas as pd

DEFAULT_ROWS = 20_000
SEED = 11
MERCHANT_COUNT = 50


def make_transactions(rows: int, seed: int = SEED) -> pd.DataFrame:
    """Build `rows` synthetic transactions with amounts, hours and merchant ids."""
    generator = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": generator.lognormal(mean=3.0, sigma=1.2, size=rows),
            "hour": generator.integers(0, 24, size=rows),
            "merchant": generator.integers(0, MERCHANT_COUNT, size=rows),
            "card_age_days": generator.integers(1, 3650, size=rows),
        }
    )


def amount_feature(amount: float) -> float:
    return math.log1p(amount)


def night_feature(hour: int) -> float:
    return 1.0 if hour < 6 or hour >= 22 else 0.0


def merchant_feature(merchant: int, merchant_totals: dict[int, float]) -> float:
    return math.log1p(merchant_totals.get(merchant, 0.0)) / 10.0


def card_age_feature(card_age_days: int) -> float:
    return 1.0 / (1.0 + card_age_days / 365.0)


def score_features(features: dict[str, float]) -> float:
    """Apply a fixed logistic model to the row's features."""
    weights = {"amount": 0.8, "night": 1.5, "merchant": 0.3, "card_age": 2.0}
    logit = -6.0 + sum(weights[name] * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-logit))


def score_row(row: pd.Series, merchant_totals: dict[int, float]) -> float:
    features = {
        "amount": amount_feature(float(row["amount"])),
        "night": night_feature(int(row["hour"])),
        "merchant": merchant_feature(int(row["merchant"]), merchant_totals),
        "card_age": card_age_feature(int(row["card_age_days"])),
    }
    return score_features(features)


def score_transactions(transactions: pd.DataFrame) -> list[float]:
    """Score each row, updating the per-merchant running total as a stream would."""
    merchant_totals: dict[int, float] = {}
    scores = []
    for _, row in transactions.iterrows():
        scores.append(score_row(row, merchant_totals))
        merchant = int(row["merchant"])
        merchant_totals[merchant] = merchant_totals.get(merchant, 0.0) + float(row["amount"])
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"transactions to score (default {DEFAULT_ROWS})",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows {args.rows} is invalid; pass a positive count")

    scores = score_transactions(make_transactions(args.rows))
    flagged = sum(score > 0.5 for score in scores)
    print(f"scored {len(scores)} transactions, {flagged} flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
