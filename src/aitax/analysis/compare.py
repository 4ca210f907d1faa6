"""Comparison of two runs, metric by metric, with a noise-aware verdict for each.

A change is a regression or an improvement only when it is larger than the
relative threshold and, for metrics with per-request or per-call samples, the
bootstrap interval of the change excludes zero. Metrics computed from totals
(wall time, CPU time, RSS, throughput, cost) have one value per run, so the
threshold alone decides for them.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from aitax.analysis.bootstrap import BootstrapSettings, Interval, bootstrap_change
from aitax.analysis.metrics import (
    RUN_METRICS,
    Metric,
    Reading,
    Statistic,
    read_metric,
    stage_metric,
)
from aitax.model.run import Run

logger = logging.getLogger(__name__)

Verdict = Literal["regression", "improvement", "within noise", "not compared"]
Basis = Literal["bootstrap", "threshold"]

DEFAULT_THRESHOLD_PCT = 5.0

# Fewer samples than this leave a bootstrap interval that means little, so the
# threshold alone decides. A percentile q also needs 100 / (100 - q) samples
# (100 for p99), because with fewer no sample lies above it and every resample
# returns about the largest value, which makes the interval too narrow.
MIN_BOOTSTRAP_SAMPLES = 10

_COMPARED_RUN_METRICS = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "throughput_rps",
    "throughput_items_per_s",
    "wall_s",
    "cpu_s",
    "peak_rss_mb",
    "memory_peak_mb",
    "cost_per_1000",
)
_COMPARED_STAGE_FIELDS = ("total_s", "p50_ms", "p95_ms")


@dataclass(frozen=True)
class CompareSettings:
    """The relative threshold in percent, the bootstrap settings, and metrics to leave out.

    `ignore` contains shell-style patterns of metric keys, such as `stage.other.*`.
    """

    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricChange:
    """One metric in both runs, the change and its verdict.

    `change` is current minus baseline in the metric's unit. `change_pct` is the
    change as a percentage of the baseline, or None when the baseline is zero.
    `interval` is the bootstrap interval of the change when `basis` is
    "bootstrap". `note` gives the reason a metric was judged by the threshold
    alone or not compared.
    """

    metric: Metric
    baseline: float | None
    current: float | None
    change: float | None
    change_pct: float | None
    interval: Interval | None
    basis: Basis
    verdict: Verdict
    note: str | None = None
    samples: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Difference:
    """A property of the target or the environment that differs between the runs."""

    name: str
    baseline: str
    current: str


@dataclass
class Comparison:
    """Every compared metric of two runs, and how their targets and environments differ."""

    settings: CompareSettings
    changes: list[MetricChange]
    differences: list[Difference]

    def with_verdict(self, verdict: Verdict) -> list[MetricChange]:
        return [change for change in self.changes if change.verdict == verdict]


def compare_runs(baseline: Run, current: Run, settings: CompareSettings) -> Comparison:
    """Compare every metric that either run has; judge each change against noise."""
    metrics = _without_ignored(compared_metrics(baseline, current), settings.ignore)
    readings = {
        metric.key: (read_metric(baseline, metric.key), read_metric(current, metric.key))
        for metric in metrics
    }
    intervals = _bootstrap_intervals(readings, settings.bootstrap)

    judged = [
        judge_change(metric, *readings[metric.key], intervals.get(metric.key), settings)
        for metric in metrics
    ]
    changes = [change for change in judged if change is not None]
    logger.debug("compared %d metrics", len(changes))
    return Comparison(settings, changes, environment_differences(baseline, current))


def compared_metrics(baseline: Run, current: Run) -> list[Metric]:
    """List the run metrics, then each stage's metrics, stages in the baseline's order first."""
    metrics = [RUN_METRICS[key] for key in _COMPARED_RUN_METRICS]
    if not _counts_items(baseline) and not _counts_items(current):
        metrics.remove(RUN_METRICS["throughput_items_per_s"])

    names = [stage.name for stage in baseline.stages]
    names += [stage.name for stage in current.stages if stage.name not in names]
    for name in names:
        metrics += [stage_metric(name, field) for field in _COMPARED_STAGE_FIELDS]
    return metrics


def _without_ignored(metrics: list[Metric], patterns: tuple[str, ...]) -> list[Metric]:
    kept = [
        metric
        for metric in metrics
        if not any(fnmatch.fnmatchcase(metric.key, pattern) for pattern in patterns)
    ]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(metric.key, pattern) for metric in metrics):
            logger.warning(
                "--ignore %r matches no metric of these runs; check the key against the "
                "metric column of --json output",
                pattern,
            )
    return kept


def _counts_items(run: Run) -> bool:
    """Return whether requests carry more than one item, so items/s differs from requests/s."""
    return run.requests.items != run.requests.count


def _bootstrap_intervals(
    readings: dict[str, tuple[Reading, Reading]], settings: BootstrapSettings
) -> dict[str, Interval]:
    """Bootstrap every metric with enough samples, resampling each sample set once.

    run.json keeps at most 10,000 evenly spaced values of a longer sample list.
    Resampling those treats the run as 10,000 samples, so the interval is wider
    than one from every sample, and a change is less likely to count.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for key, (old, new) in readings.items():
        if _bootstrap_skip_reason(old, new) is None:
            groups[old.sample_source].append(key)

    intervals: dict[str, Interval] = {}
    for source, keys in groups.items():
        old, new = readings[keys[0]]
        statistics = [readings[key][0].statistic for key in keys]
        by_statistic = bootstrap_change(
            old.samples, new.samples, [s for s in statistics if s is not None], settings, source
        )
        for key, statistic in zip(keys, statistics, strict=True):
            if statistic is not None:
                intervals[key] = by_statistic[statistic]
    return intervals


def _bootstrap_skip_reason(old: Reading, new: Reading) -> str | None:
    """Return why a metric is judged by the threshold alone, or None when it can be bootstrapped."""
    if old.statistic is None or new.statistic is None:
        return "threshold only: one value per run, no per-request samples"
    fewest = min(len(old.samples), len(new.samples))
    needed = min_bootstrap_samples(old.statistic)
    if fewest < needed:
        return f"threshold only: {fewest} samples, and {old.statistic} needs {needed}"
    if old.sample_source != new.sample_source:
        return "threshold only: the sample sets differ"
    return None


def min_bootstrap_samples(statistic: Statistic) -> int:
    """Return the fewest samples per run for which `statistic` is bootstrapped."""
    if statistic == "mean":
        return MIN_BOOTSTRAP_SAMPLES
    return max(MIN_BOOTSTRAP_SAMPLES, math.ceil(100 / (100 - float(statistic[1:]))))


def judge_change(
    metric: Metric,
    old: Reading,
    new: Reading,
    interval: Interval | None,
    settings: CompareSettings,
) -> MetricChange | None:
    """Judge one metric's change; None when neither run has the metric."""
    if old.value is None and new.value is None:
        return None
    if old.value is None or new.value is None:
        side, reading = ("baseline", old) if old.value is None else ("current run", new)
        note = f"missing in the {side}: {reading.reason}"
        return MetricChange(
            metric, old.value, new.value, None, None, None, "threshold", "not compared", note
        )

    change = new.value - old.value
    change_pct = change / abs(old.value) * 100 if old.value != 0 else None
    basis: Basis = "bootstrap" if interval is not None else "threshold"
    verdict = _verdict(metric, change, change_pct, interval, settings.threshold_pct)
    return MetricChange(
        metric,
        old.value,
        new.value,
        change,
        change_pct,
        interval,
        basis,
        verdict,
        note=None if interval is not None else _bootstrap_skip_reason(old, new),
        samples=(old.sample_count, new.sample_count),
    )


def _verdict(
    metric: Metric,
    change: float,
    change_pct: float | None,
    interval: Interval | None,
    threshold_pct: float,
) -> Verdict:
    # From a zero baseline any change is infinitely large in relative terms.
    exceeds = change != 0 if change_pct is None else abs(change_pct) > threshold_pct
    if interval is not None:
        # The interval must exclude zero on the same side as the point change.
        exceeds = exceeds and (interval.low > 0 if change > 0 else interval.high < 0)
    if not exceeds:
        return "within noise"

    worse = change > 0 if metric.better == "lower" else change < 0
    return "regression" if worse else "improvement"


def environment_differences(baseline: Run, current: Run) -> list[Difference]:
    """List the target, machine, Python, package versions and instance price that differ.

    The aitax command lines are left out: they differ in -o and other options that
    do not change what the target does.
    """
    old, new = baseline.environment, current.environment
    pairs = [
        ("target", baseline.target, current.target),
        ("python", old.python, new.python),
        ("cpu model", old.cpu_model, new.cpu_model),
        ("cpu count", str(old.cpu_count), str(new.cpu_count)),
        ("platform", old.platform, new.platform),
        ("aitax", old.aitax_version, new.aitax_version),
        (
            "instance price",
            f"${baseline.cost.instance_cost_per_hour:g}/h",
            f"${current.cost.instance_cost_per_hour:g}/h",
        ),
    ]
    # The aitax version is compared above, from the field that every run has.
    for package in sorted((set(old.packages) | set(new.packages)) - {"aitax"}):
        pairs.append(
            (
                package,
                old.packages.get(package, "not installed"),
                new.packages.get(package, "not installed"),
            )
        )
    return [Difference(name, before, after) for name, before, after in pairs if before != after]
