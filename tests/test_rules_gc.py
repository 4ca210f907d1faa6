"""The GC rule on requests whose full collections walk a large start-up heap, and on gc.freeze()."""

from __future__ import annotations

from typing import Any

import pytest

from aitax import markers
from aitax.capture.gc_watch import GcWatch, read_gc_record
from conftest import profile_source

LARGE_HEAP = """
import aitax

catalog = [{"id": i, "tags": [i, i + 1]} for i in range(400_000)]  # loaded at start-up
history = []

for request in range(200):
    with aitax.request():
        with aitax.stage("feature_compute"):
            history.append([[request, j] for j in range(3000)])  # objects kept for a while
            if len(history) > 20:
                history.pop(0)
            total = sum(i * i for i in range(20000))
"""
# The fix freezes the start-up objects, so full collections no longer walk them.
FROZEN_HEAP = LARGE_HEAP.replace(
    "history = []\n", "history = []\nimport gc\ngc.collect()\ngc.freeze()\n"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), LARGE_HEAP, passes="clean"),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), FROZEN_HEAP, passes="clean"),
    }


def gc_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "gc"]


def compute_cpu_s(run: dict[str, Any]) -> float:
    """Return the stage's CPU time, which includes the collections and is steadier than wall time."""
    return sum(s["cpu_s"] or 0.0 for s in run["stages"] if s["name"] == "feature_compute")


def test_large_heap_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert "gc" in [finding["category"] for finding in findings[:3]]
    finding = gc_findings(runs["planted"])[0]
    assert "generation 2" in finding["evidence"]
    assert "gc.freeze()" in finding["code_sketch"]


def test_frozen_heap_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert gc_findings(runs["fixed"]) == []


def test_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """The estimate is an upper bound: the CPU time of all generation-2 pauses in requests,
    while full collections of the objects that requests keep still run after freezing. It
    must be within 0.7x-3x of the CPU time that freezing saved."""
    measured_ms = 1000 * (compute_cpu_s(runs["planted"]) - compute_cpu_s(runs["fixed"]))
    estimate_ms = gc_findings(runs["planted"])[0]["estimated_saving_ms"]
    assert measured_ms > 0
    assert 0.7 * measured_ms <= estimate_ms <= 3.0 * measured_ms


class FakeClock:
    """Nanosecond clock that advances by a fixed step on every read."""

    def __init__(self, step_ns: int) -> None:
        self.now = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.now += self.step_ns
        return self.now


def test_gc_watch_adds_pauses_to_open_request() -> None:
    watch = GcWatch(clock=FakeClock(1000), cpu_clock=FakeClock(400))
    recorder = markers.Recorder()
    markers.install(recorder)
    try:
        with markers.request():
            watch._on_collection("start", {"generation": 2})
            watch._on_collection("stop", {"generation": 2})
        watch._on_collection("start", {"generation": 0})
        watch._on_collection("stop", {"generation": 0})
    finally:
        markers.install(None)

    record = read_gc_record(watch.stop())
    assert record is not None
    assert record.by_request == {1: (1000, 1000, 400)}
    assert record.outside_requests_ns == 1000
    assert record.counts == [1, 0, 1]
    assert record.max_pause_generation == 2
