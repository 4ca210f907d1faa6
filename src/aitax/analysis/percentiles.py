"""Percentiles with linear interpolation between closest ranks (NumPy's default method)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Return the `q`-th percentile (0 to 100) of already sorted values, or None if empty."""
    if not sorted_values:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q!r} is out of range; pass a value from 0 to 100")

    position = (len(sorted_values) - 1) * q / 100.0
    lower = math.floor(position)
    upper = math.ceil(position)
    fraction = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction


def summarize_ms(durations_ns: Sequence[int]) -> tuple[float | None, float | None, float | None]:
    """Return p50, p95 and p99 in milliseconds of durations given in nanoseconds."""
    ordered = sorted(value / 1e6 for value in durations_ns)
    return percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)
