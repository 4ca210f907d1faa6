"""The memory section of the HTML report: capped tables, stage colors and sort keys.

Tables are capped so that a `run.json` written by another tool, or a future
version of the memory pass with longer lists, still gives a small page. The
page notes each cap that applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aitax.model.run import AllocationSite, LeakSuspect, MemoryProfile, PassResult, StageMemory

MAX_ALLOCATION_ROWS: Final = 50
MAX_PEAK_ROWS: Final = 20
MAX_LEAK_ROWS: Final = 20
MAX_MEMORY_STAGES: Final = 40
MAX_MEMORY_CHART_STAGES: Final = 12

MEMORY_PASS: Final = "memory"
LINE_PASS: Final = "line"


@dataclass(frozen=True)
class MemoryStageRow:
    """A stage's allocations, with its chart color and share of all allocated bytes."""

    stage: StageMemory
    color: str
    share: float


@dataclass(frozen=True)
class MemoryView:
    """The content of the memory section, after the caps."""

    profile: MemoryProfile
    colors: dict[str, str]
    stage_rows: list[MemoryStageRow]
    chart_stages: list[StageMemory]
    top_allocations: list[AllocationSite]
    peak_locations: list[AllocationSite]
    leak_suspects: list[LeakSuspect]

    @property
    def stage_total(self) -> int:
        return len(self.profile.by_stage)

    @property
    def allocation_total(self) -> int:
        return len(self.profile.top_allocations)

    @property
    def peak_total(self) -> int:
        return len(self.profile.peak_locations)

    @property
    def leak_total(self) -> int:
        return len(self.profile.leak_suspects)


def build_memory_view(profile: MemoryProfile, colors: dict[str, str]) -> MemoryView:
    """Cap the memory tables and pair each stage with its color.

    `colors` must hold a color for every stage in `profile.by_stage`.
    """
    stages = sorted(profile.by_stage, key=lambda stage: -stage.allocated_bytes)
    total = sum(max(stage.allocated_bytes, 0) for stage in stages)
    rows = [
        MemoryStageRow(stage, colors[stage.name], stage.allocated_bytes / total if total else 0.0)
        for stage in stages[:MAX_MEMORY_STAGES]
    ]
    top = sorted(profile.top_allocations, key=lambda site: -site.allocated_bytes)
    peak = sorted(profile.peak_locations, key=lambda site: -site.allocated_bytes)
    leaks = sorted(profile.leak_suspects, key=lambda suspect: -suspect.held_bytes)

    return MemoryView(
        profile=profile,
        colors=colors,
        stage_rows=rows,
        chart_stages=stages[:MAX_MEMORY_CHART_STAGES],
        top_allocations=top[:MAX_ALLOCATION_ROWS],
        peak_locations=peak[:MAX_PEAK_ROWS],
        leak_suspects=leaks[:MAX_LEAK_ROWS],
    )


def allocation_sort_keys(sites: Sequence[AllocationSite]) -> list[list[Any]]:
    """Sort keys of the top-allocations table, one list per row in column order."""
    return [
        [
            site.function,
            f"{site.file}:{site.line:09d}",
            site.stage,
            site.library_call,
            site.allocated_bytes,
            site.allocations,
            site.per_request_bytes,
        ]
        for site in sites
    ]


def memory_stage_sort_keys(rows: Sequence[MemoryStageRow]) -> list[list[Any]]:
    """Sort keys of the memory-by-stage table, one list per row in column order."""
    return [
        [row.stage.name, row.stage.allocated_bytes, row.stage.allocations, row.stage.peak_bytes]
        for row in rows
    ]


def pass_result(passes: Sequence[PassResult], name: str) -> PassResult | None:
    """Return the result of the pass called `name`, or None when the run did not include it."""
    return next((result for result in passes if result.name == name), None)
