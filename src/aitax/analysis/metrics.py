"""The metrics that `aitax compare` and `aitax check` read from a run.

A metric has a key such as `p99_ms` or `stage.inference.p95_ms`, a unit, and a
direction: for `lower` metrics a rise is a regression, for `higher` ones a fall.
Reading a metric returns its value, the reason when the run has none, and the
per-request or per-call samples behind it when there are any.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from aitax.model.run import Run, StageStats

Better = Literal["lower", "higher"]

# A statistic of the samples: a percentile such as "p95", or "mean". The
# bootstrap computes the same statistic on resampled data.
Statistic = Literal["p50", "p95", "p99", "mean"]

MIB = 1024 * 1024
STAGE_PREFIX = "stage."

NO_REQUESTS = "no requests were marked; wrap each prediction in `with aitax.request():`"


@dataclass(frozen=True)
class Metric:
    """A number that can be read from every run."""

    key: str
    label: str
    unit: str
    better: Better


@dataclass(frozen=True)
class Reading:
    """A metric's value in one run, or the reason it has none.

    `samples` contains the per-request or per-call durations in milliseconds that
    `statistic` summarizes into `value`. It is empty for metrics computed from
    totals, such as wall time. `sample_count` is the number of samples measured,
    which exceeds `len(samples)` when run.json kept a thinned list.
    """

    value: float | None
    reason: str | None = None
    samples: Sequence[float] = ()
    statistic: Statistic | None = None
    sample_count: int = 0
    sample_source: str = ""


_LATENCY_STATISTICS: dict[str, Statistic] = {
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "mean_ms": "mean",
}

RUN_METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("p50_ms", "latency p50", "ms", "lower"),
        Metric("p95_ms", "latency p95", "ms", "lower"),
        Metric("p99_ms", "latency p99", "ms", "lower"),
        Metric("mean_ms", "latency mean", "ms", "lower"),
        Metric("throughput_rps", "throughput", "req/s", "higher"),
        Metric("throughput_items_per_s", "item throughput", "items/s", "higher"),
        Metric("wall_s", "wall time", "s", "lower"),
        Metric("cpu_s", "CPU time", "s", "lower"),
        Metric("peak_rss_mb", "peak RSS", "MiB", "lower"),
        Metric("memory_peak_mb", "memray memory peak", "MiB", "lower"),
        Metric("cost_per_1000", "cost per 1000 predictions", "$", "lower"),
    )
}

# Fields of `stage.NAME.FIELD` keys: the label suffix, the unit and a description.
STAGE_FIELDS: dict[str, tuple[str, str, str]] = {
    "total_s": ("total", "s", "exclusive wall time of the stage"),
    "cpu_s": ("CPU time", "s", "exclusive CPU time of the stage"),
    "p50_ms": ("p50 per call", "ms", "median duration of one call"),
    "p95_ms": ("p95 per call", "ms", "95th percentile duration of one call"),
    "p99_ms": ("p99 per call", "ms", "99th percentile duration of one call"),
}

METRIC_KEYS_HELP = ", ".join([*RUN_METRICS, *(f"stage.NAME.{name}" for name in STAGE_FIELDS)])


def stage_metric(name: str, field: str) -> Metric:
    """Return the metric for `field` of the stage `name`. Lower is better for every stage metric."""
    suffix, unit, _ = STAGE_FIELDS[field]
    return Metric(f"{STAGE_PREFIX}{name}.{field}", f"{name}: {suffix}", unit, "lower")


def parse_metric(key: str) -> Metric:
    """Return the metric that `key` names; raise ValueError naming the known keys otherwise."""
    if key in RUN_METRICS:
        return RUN_METRICS[key]

    if key.startswith(STAGE_PREFIX):
        # Stage names may contain dots, so the field is what follows the last one.
        name, _, field = key[len(STAGE_PREFIX) :].rpartition(".")
        if name and field in STAGE_FIELDS:
            return stage_metric(name, field)
    raise ValueError(f"unknown metric {key!r}; the metrics are {METRIC_KEYS_HELP}")


def split_stage_key(key: str) -> tuple[str, str] | None:
    """Return (stage name, field) of a `stage.NAME.FIELD` key, or None for a run metric."""
    if key in RUN_METRICS or not key.startswith(STAGE_PREFIX):
        return None
    name, _, field = key[len(STAGE_PREFIX) :].rpartition(".")
    return name, field


def read_metric(run: Run, key: str) -> Reading:
    """Read the metric `key` from `run`. The key must be one that parse_metric accepts."""
    stage_key = split_stage_key(key)
    if stage_key is not None:
        return _read_stage(run, *stage_key)
    if key in _LATENCY_STATISTICS:
        return _read_latency(run, key)
    return _RUN_READERS[key](run)


def _read_latency(run: Run, key: str) -> Reading:
    requests = run.requests
    value: float | None = getattr(requests, key)
    if requests.count == 0 or value is None:
        return Reading(None, NO_REQUESTS)
    return Reading(
        value,
        samples=requests.latencies_ms,
        statistic=_LATENCY_STATISTICS[key],
        sample_count=requests.count,
        sample_source="requests",
    )


def _read_stage(run: Run, name: str, field: str) -> Reading:
    stage = next((stage for stage in run.stages if stage.name == name), None)
    if stage is None:
        names = ", ".join(stage.name for stage in run.stages) or "none"
        return Reading(None, f"stage {name!r} is not in this run; its stages are: {names}")

    value: float | None = getattr(stage, field)
    if value is None:
        return Reading(None, _missing_stage_reason(stage, field))
    if field.endswith("_ms"):
        return Reading(
            value,
            samples=stage.durations_ms,
            statistic=_LATENCY_STATISTICS[field],
            sample_count=stage.count or len(stage.durations_ms),
            sample_source=f"stage {name}",
        )
    return Reading(value)


def _missing_stage_reason(stage: StageStats, field: str) -> str:
    if stage.source == "auto":
        what = "CPU time" if field == "cpu_s" else "per-call percentiles"
        return (
            f"stage {stage.name!r} was classified automatically, so it has no {what}; "
            f"mark it with aitax.stage({stage.name!r})"
        )
    return f"stage {stage.name!r} has no {field} in this run.json"


def _read_throughput(run: Run) -> Reading:
    return _optional(run.requests.throughput_rps, NO_REQUESTS)


def _read_item_throughput(run: Run) -> Reading:
    return _optional(run.requests.throughput_items_per_s, NO_REQUESTS)


def _read_peak_rss(run: Run) -> Reading:
    if run.peak_rss_bytes is None:
        return Reading(None, "peak RSS was not measured in this run")
    return Reading(run.peak_rss_bytes / MIB)


def _read_memory_peak(run: Run) -> Reading:
    if run.memory is None:
        return Reading(None, "the memory pass did not run; add memory to --passes")
    return Reading(run.memory.peak_bytes / MIB)


def _read_cost(run: Run) -> Reading:
    return _optional(run.cost.per_1000_predictions, run.cost.basis)


def _optional(value: float | None, reason: str) -> Reading:
    return Reading(None, reason) if value is None else Reading(value)


_RUN_READERS: dict[str, Callable[[Run], Reading]] = {
    "throughput_rps": _read_throughput,
    "throughput_items_per_s": _read_item_throughput,
    "wall_s": lambda run: Reading(run.wall_s),
    "cpu_s": lambda run: Reading(run.cpu_s),
    "peak_rss_mb": _read_peak_rss,
    "memory_peak_mb": _read_memory_peak,
    "cost_per_1000": _read_cost,
}
