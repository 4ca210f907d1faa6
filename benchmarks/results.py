"""Results of one benchmark run, family by family, and the targets they are judged against."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accuracy import StageComparison
from machine import Machine
from report_cost import GrowthFit, PointResult, Sweep
from targets import Pipeline
from timing import Measurement


@dataclass
class PipelineResult:
    """Side-by-side timings of one pipeline: the bare run, aitax and the other profilers."""

    pipeline: Pipeline
    args: list[str] = field(default_factory=list)
    measurements: dict[str, Measurement] = field(default_factory=dict)
    skipped: str | None = None


@dataclass
class AccuracyResult:
    measurements: dict[str, Measurement] = field(default_factory=dict)
    marked: list[StageComparison] = field(default_factory=list)
    unmarked: list[StageComparison] = field(default_factory=list)
    skipped: str | None = None


@dataclass
class MonitorResult:
    costs: dict[str, Any] | None = None
    skipped: str | None = None


@dataclass
class SweepResult:
    sweep: Sweep
    points: list[PointResult]
    fit: GrowthFit | None


@dataclass
class ReportCostResult:
    sweeps: list[SweepResult] = field(default_factory=list)
    skipped: str | None = None


@dataclass
class BenchmarkResults:
    """Everything the page shows."""

    command: str
    quick: bool
    runs: int
    started_at: datetime
    finished_at: datetime
    machine: Machine
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    pass_names: tuple[str, ...]
    pipelines: list[PipelineResult]
    accuracy: AccuracyResult
    monitor: MonitorResult
    report_cost: ReportCostResult


@dataclass(frozen=True)
class TargetCheck:
    """One target: the measured value against its limit, where lower is better."""

    name: str
    measured: float
    limit: float
    unit: str
    detail: str = ""
    # The limit behind the measured value and the next step, shown when the target is missed.
    gap: str = ""

    @property
    def measured_ok(self) -> bool:
        return not math.isnan(self.measured)

    @property
    def met(self) -> bool:
        return self.measured_ok and self.measured <= self.limit

    def verdict(self) -> str:
        if not self.measured_ok:
            return "not measured"
        if self.met:
            return "met"
        excess = self.measured - self.limit
        amount = f"{excess:,.{unit_decimals(self.unit)}f}{self.unit}"
        return f"missed by {amount} ({excess / self.limit:.0%} over)"


def unit_decimals(unit: str) -> int:
    return {"x": 2, " pp": 1, " ns": 0}.get(unit, 2)
