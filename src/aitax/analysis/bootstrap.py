"""Percentile-bootstrap confidence intervals for the change of a statistic between two runs.

Each run's samples are resampled with replacement, the statistic is computed on
every resample, and the interval is the central `confidence` share of the
differences (current minus baseline). The generator is seeded, so the same two
runs always give the same interval.

NOTE: the bootstrap treats samples as independent. Requests that share a cause
of slowness (a GC pause, a cold cache) are correlated, so the interval can be
narrower than the true uncertainty. The relative threshold in the comparison
guards against that.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aitax.analysis.metrics import Statistic

FloatArray = npt.NDArray[np.float64]

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0

# Resampled values held in memory at once: 2**21 float64 values take 16 MiB.
MAX_CHUNK_VALUES = 2**21


@dataclass(frozen=True)
class BootstrapSettings:
    """Number of resamples, confidence level (0 to 1) and generator seed of the bootstrap."""

    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a change, in the unit of the samples."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_change(
    baseline: Sequence[float],
    current: Sequence[float],
    statistics: Sequence[Statistic],
    settings: BootstrapSettings,
    stream: str = "",
) -> dict[Statistic, Interval]:
    """Return the interval of `statistic(current) - statistic(baseline)` for each statistic.

    `stream` names the sample set, such as "requests", so that each set gets its
    own random stream whatever order the sets are compared in. Both sequences
    must be non-empty.
    """
    if not baseline or not current:
        raise ValueError("bootstrap_change needs at least one sample in each run")

    stream_id = zlib.crc32(stream.encode("utf-8"))
    baseline_stats = _resampled_statistics(
        np.asarray(baseline, dtype=np.float64), statistics, settings, [stream_id, 0]
    )
    current_stats = _resampled_statistics(
        np.asarray(current, dtype=np.float64), statistics, settings, [stream_id, 1]
    )
    changes = current_stats - baseline_stats

    tail = (1 - settings.confidence) / 2 * 100
    low, high = np.percentile(changes, [tail, 100 - tail], axis=0)
    return {
        statistic: Interval(float(low[index]), float(high[index]))
        for index, statistic in enumerate(statistics)
    }


def _resampled_statistics(
    samples: FloatArray,
    statistics: Sequence[Statistic],
    settings: BootstrapSettings,
    stream: list[int],
) -> FloatArray:
    """Compute each statistic on `settings.resamples` resamples; return a (resamples, k) array."""
    generator = np.random.default_rng([settings.seed, *stream])
    size = samples.size
    rows_per_chunk = max(1, MAX_CHUNK_VALUES // size)
    result = np.empty((settings.resamples, len(statistics)), dtype=np.float64)

    for start in range(0, settings.resamples, rows_per_chunk):
        stop = min(settings.resamples, start + rows_per_chunk)
        indices = generator.integers(0, size, size=(stop - start, size))
        result[start:stop] = _statistics(samples[indices], statistics)
    return result


def _statistics(resamples: FloatArray, statistics: Sequence[Statistic]) -> FloatArray:
    """Compute each statistic along the rows of `resamples`; return a (rows, k) array."""
    columns = np.empty((resamples.shape[0], len(statistics)), dtype=np.float64)
    percentiles = [
        (index, float(statistic[1:]))
        for index, statistic in enumerate(statistics)
        if statistic != "mean"
    ]
    if percentiles:
        # One call for all percentiles partitions each row once. NumPy's default
        # linear interpolation matches aitax.analysis.percentiles.
        values = np.percentile(resamples, [q for _, q in percentiles], axis=1)
        for row, (index, _) in enumerate(percentiles):
            columns[:, index] = values[row]
    for index, statistic in enumerate(statistics):
        if statistic == "mean":
            columns[:, index] = resamples.mean(axis=1)
    return columns
