"""Stage attribution: exclusive time per stage, and request latency.

Marked stages are measured in the clean pass. Time outside every marked stage
is split among automatic stages in proportion to the CPU-pass samples that the
module rules put in each. Time that no rule claims stays in `other`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aitax.analysis.classify import IDLE, OTHER
from aitax.analysis.percentiles import percentile, summarize_ms
from aitax.analysis.samples import Sample
from aitax.markers import STANDARD_STAGES, RequestEvent, StageEvent
from aitax.model.run import RequestStats, StageStats

# Lists of raw durations kept in run.json for the histograms; longer lists are
# thinned to this many evenly spaced values of the sorted list.
MAX_KEPT_DURATIONS = 10_000


@dataclass
class MarkedTotals:
    """Clean-pass totals of one marked stage, in nanoseconds."""

    name: str
    exclusive_ns: int = 0
    exclusive_cpu_ns: int = 0
    durations_ns: list[int] = field(default_factory=list)
    # Set when spans of this stage overlapped other spans on the same thread
    # without nesting in them: asyncio tasks that interleave. The thread's CPU
    # clock then counts every task's work in each open span.
    interleaved: bool = False


def marked_totals(events: Iterable[StageEvent]) -> dict[str, MarkedTotals]:
    """Sum exclusive wall and CPU time per stage name; keep each span's inclusive duration."""
    events = list(events)
    interleaved_names = interleaved_stage_names(events)
    totals: dict[str, MarkedTotals] = {}
    for event in events:
        entry = totals.get(event.name)
        if entry is None:
            entry = totals[event.name] = MarkedTotals(event.name)
        duration = event.end_ns - event.start_ns
        # Children that ran concurrently (asyncio.gather inside one stage) can add up to
        # more than their parent's span, so exclusive time is clamped at zero.
        entry.exclusive_ns += max(0, duration - event.child_ns)
        entry.exclusive_cpu_ns += max(0, event.cpu_ns - event.child_cpu_ns)
        entry.durations_ns.append(duration)
        entry.interleaved = event.name in interleaved_names
    return totals


def interleaved_stage_names(events: Sequence[StageEvent]) -> set[str]:
    """Return the names of stages that ran in concurrent tasks on one thread.

    On a thread that runs one task at a time each instant belongs to one
    innermost span, so the spans' exclusive times add up to the time they cover.
    Interleaved asyncio tasks each count the same instants, and add up to more.
    """
    by_thread: dict[int, list[StageEvent]] = defaultdict(list)
    for event in events:
        by_thread[event.thread_id].append(event)

    names: set[str] = set()
    for spans in by_thread.values():
        exclusive = sum(max(0, span.end_ns - span.start_ns - span.child_ns) for span in spans)
        if exclusive > _covered_ns(spans) * (1 + CONCURRENCY_TOLERANCE):
            names.update(span.name for span in spans)
    return names


# Clock reads between nested spans can add a little exclusive time; more than
# this share over the covered time means concurrent tasks.
CONCURRENCY_TOLERANCE = 0.01


def _covered_ns(spans: Sequence[StageEvent]) -> int:
    """Return the length of the union of the spans' intervals."""
    covered = 0
    end = None
    for span in sorted(spans, key=lambda item: item.start_ns):
        if end is None or span.start_ns > end:
            covered += span.end_ns - span.start_ns
            end = span.end_ns
        elif span.end_ns > end:
            covered += span.end_ns - end
            end = span.end_ns
    return covered


def auto_fractions(samples: Sequence[Sample]) -> dict[str, float]:
    """Return each automatic stage's fraction of the CPU-pass time spent outside marked stages.

    Idle samples (waiting for work) are left out, so the unmarked time is split among work.
    """
    seconds: dict[str, float] = defaultdict(float)
    for sample in samples:
        if sample.auto and sample.stage != IDLE:
            seconds[sample.stage] += sample.seconds
    total = sum(seconds.values())
    if total <= 0:
        return {}
    return {stage: value / total for stage, value in seconds.items()}


def attribute_stages(
    wall_s: float,
    marked: dict[str, MarkedTotals],
    fractions: dict[str, float] | None,
) -> list[StageStats]:
    """Combine marked totals and automatic fractions into the stage table.

    `fractions` is None when no CPU samples exist; the unmarked time is then `other`.
    """
    marked_s = sum(entry.exclusive_ns for entry in marked.values()) / 1e9
    # Marked stages in concurrent threads can add up to more than the wall time.
    denominator = max(wall_s, marked_s)
    unmarked_s = max(0.0, wall_s - marked_s)

    stages = [_marked_stage(entry, denominator) for entry in marked.values()]
    split = fractions if fractions else {OTHER: 1.0}
    for name, fraction in split.items():
        seconds = unmarked_s * fraction
        stages.append(_auto_stage(name, seconds, denominator))
    return sorted(stages, key=_stage_order)


def _marked_stage(entry: MarkedTotals, denominator: float) -> StageStats:
    total_s = entry.exclusive_ns / 1e9
    p50, p95, p99 = summarize_ms(entry.durations_ns)
    return StageStats(
        name=entry.name,
        total_s=total_s,
        share=total_s / denominator if denominator > 0 else 0.0,
        cpu_s=None if entry.interleaved else entry.exclusive_cpu_ns / 1e9,
        count=len(entry.durations_ns),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        source="marked",
        durations_ms=thin_sorted([value / 1e6 for value in entry.durations_ns]),
    )


def _auto_stage(name: str, seconds: float, denominator: float) -> StageStats:
    return StageStats(
        name=name,
        total_s=seconds,
        share=seconds / denominator if denominator > 0 else 0.0,
        cpu_s=None,
        count=None,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        source="auto",
    )


def _stage_order(stage: StageStats) -> tuple[int, int, str]:
    if stage.name in STANDARD_STAGES:
        rank = STANDARD_STAGES.index(stage.name)
    elif stage.name == OTHER:
        rank = len(STANDARD_STAGES) + 1
    else:
        rank = len(STANDARD_STAGES)
    return rank, 0 if stage.source == "marked" else 1, stage.name


def thin_sorted(values: list[float], limit: int = MAX_KEPT_DURATIONS) -> list[float]:
    """Sort `values` and keep at most `limit` evenly spaced ones, the minimum and maximum included."""
    ordered = sorted(values)
    if len(ordered) <= limit:
        return ordered
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(i * step)] for i in range(limit)]


def request_stats(events: Sequence[RequestEvent]) -> RequestStats:
    """Latency percentiles and throughput of the marked requests.

    Throughput counts requests over the window from the first request's start to
    the last one's end, so time before and after serving is not counted.
    """
    if not events:
        return RequestStats(0, 0, None, None, None, None, None, None, None)

    latencies = sorted((event.end_ns - event.start_ns) / 1e6 for event in events)
    items = sum(event.size for event in events)
    window_s = (max(e.end_ns for e in events) - min(e.start_ns for e in events)) / 1e9
    return RequestStats(
        count=len(events),
        items=items,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / len(latencies),
        max_ms=latencies[-1],
        throughput_rps=len(events) / window_s if window_s > 0 else None,
        throughput_items_per_s=items / window_s if window_s > 0 else None,
        latencies_ms=thin_sorted(latencies),
    )
