"""Stage attribution arithmetic on hand-built events, with exact expected numbers."""

from __future__ import annotations

import pytest

from aitax.analysis.percentiles import percentile
from aitax.analysis.stages import (
    attribute_stages,
    interleaved_stage_names,
    marked_totals,
    request_stats,
    thin_sorted,
)
from aitax.markers import RequestEvent, StageEvent

MS = 1_000_000


def stage_event(
    name: str,
    start_ms: int,
    end_ms: int,
    child_ms: int = 0,
    cpu_ms: int | None = None,
    request_id: int | None = None,
) -> StageEvent:
    cpu = (end_ms - start_ms) if cpu_ms is None else cpu_ms
    return StageEvent(name, start_ms * MS, end_ms * MS, cpu * MS, child_ms * MS, 0, 1, request_id)


def test_exclusive_time_subtracts_children() -> None:
    events = [
        stage_event("feature_compute", 10, 40),
        stage_event("feature_fetch", 0, 50, child_ms=30),
    ]
    totals = marked_totals(events)
    assert totals["feature_fetch"].exclusive_ns == 20 * MS
    assert totals["feature_compute"].exclusive_ns == 30 * MS
    assert totals["feature_fetch"].durations_ns == [50 * MS]


def test_marked_and_auto_shares_add_up() -> None:
    totals = marked_totals([stage_event("inference", 0, 600, cpu_ms=500)])
    stages = attribute_stages(1.0, totals, {"logging": 0.25, "other": 0.75})

    by_name = {(s.name, s.source): s for s in stages}
    assert by_name[("inference", "marked")].total_s == pytest.approx(0.6)
    assert by_name[("inference", "marked")].share == pytest.approx(0.6)
    assert by_name[("inference", "marked")].cpu_s == pytest.approx(0.5)
    assert by_name[("logging", "auto")].total_s == pytest.approx(0.1)
    assert by_name[("other", "auto")].total_s == pytest.approx(0.3)
    assert sum(s.share for s in stages) == pytest.approx(1.0)
    assert [s.name for s in stages] == ["inference", "logging", "other"]


def test_unmarked_time_is_other_without_samples() -> None:
    stages = attribute_stages(2.0, marked_totals([stage_event("inference", 0, 500)]), None)
    other = [s for s in stages if s.name == "other"]
    assert len(other) == 1
    assert other[0].total_s == pytest.approx(1.5)
    assert other[0].source == "auto"


def test_concurrent_stages_share_exceeding_wall_is_normalized() -> None:
    events = [stage_event("inference", 0, 1000), stage_event("inference", 0, 1000)]
    stages = attribute_stages(1.0, marked_totals(events), None)
    inference = next(s for s in stages if s.name == "inference")
    assert inference.share == pytest.approx(1.0)
    assert next(s for s in stages if s.name == "other").total_s == 0.0


def test_stage_percentiles_use_span_durations() -> None:
    events = [stage_event("inference", 0, d) for d in (10, 20, 30, 40, 50)]
    [stage] = [
        s for s in attribute_stages(1.0, marked_totals(events), None) if s.name == "inference"
    ]
    assert stage.p50_ms == pytest.approx(30.0)
    assert stage.p95_ms == pytest.approx(48.0)
    assert stage.count == 5


def test_request_stats_percentiles_and_throughput() -> None:
    events = [RequestEvent(i, 2, i * 10 * MS, i * 10 * MS + (i + 1) * MS, 0) for i in range(10)]
    stats = request_stats(events)
    assert stats.count == 10
    assert stats.items == 20
    assert stats.p50_ms == pytest.approx(5.5)
    assert stats.p99_ms == pytest.approx(9.91)
    # Window: from 0 ms to the last end at 90 + 10 = 100 ms.
    assert stats.throughput_rps == pytest.approx(100.0)
    assert stats.throughput_items_per_s == pytest.approx(200.0)


def test_request_stats_empty() -> None:
    stats = request_stats([])
    assert stats.count == 0
    assert stats.p50_ms is None
    assert stats.throughput_rps is None


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="out of range"):
        percentile([1.0], 101)


def test_thin_sorted_keeps_extremes() -> None:
    values = [float(v) for v in range(100_000, 0, -1)]
    thinned = thin_sorted(values, limit=1000)
    assert len(thinned) == 1000
    assert thinned[0] == 1.0
    assert thinned[-1] == 100_000.0
    assert thinned == sorted(thinned)


def span(name: str, start: int, end: int, child: int = 0, thread: int = 1) -> StageEvent:
    return StageEvent(name, start, end, end - start, child, child, thread, None, None)


def test_nested_spans_are_not_interleaved() -> None:
    spans = [span("outer", 0, 100, child=40), span("inner", 10, 50), span("next", 100, 120)]
    assert interleaved_stage_names(spans) == set()


def test_concurrent_tasks_are_interleaved() -> None:
    tasks = [span("feature_fetch", start, start + 50) for start in (0, 5, 10)]
    other_thread = [span("inference", 0, 10, thread=2)]

    assert interleaved_stage_names(tasks + other_thread) == {"feature_fetch"}
    totals = marked_totals(tasks + other_thread)
    assert totals["feature_fetch"].interleaved
    assert not totals["inference"].interleaved
