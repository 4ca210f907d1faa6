"""The input and output types shared by all diagnosis rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aitax.analysis.samples import Sample
from aitax.markers import RequestEvent, StageEvent
from aitax.model.run import Finding, LineProfile, MemoryProfile, RequestStats, Severity, StageStats

# Severity of a finding from its estimated saving as a share of the run's wall
# time, or of the p99 latency when requests are marked. One place, quoted in the report.
HIGH_SAVING_SHARE = 0.10
MEDIUM_SAVING_SHARE = 0.02


@dataclass(frozen=True)
class RuleContext:
    """The measurements that rules read. Sample times are already scaled to the clean pass."""

    wall_s: float
    stages: Sequence[StageStats]
    requests: RequestStats
    stage_events: Sequence[StageEvent]
    request_events: Sequence[RequestEvent]
    samples: Sequence[Sample]
    sample_scale: float
    lines: Sequence[LineProfile] = ()
    memory: MemoryProfile | None = None
    # Each pass's capture `extra`, by pass name ("clean", "cpu", "line").
    pass_extras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def stage(self, name: str) -> StageStats | None:
        """Return the stage called `name`, preferring the marked entry over the auto one."""
        matches = [stage for stage in self.stages if stage.name == name]
        matches.sort(key=lambda stage: stage.source != "marked")
        return matches[0] if matches else None

    def stage_total_s(self, name: str) -> float:
        return sum(stage.total_s for stage in self.stages if stage.name == name)

    @property
    def serving_s(self) -> float:
        """Return the summed latency of the marked requests, or the wall time if none are marked."""
        if not self.request_events:
            return self.wall_s
        return sum(event.end_ns - event.start_ns for event in self.request_events) / 1e9

    def scaled(self, cpu_pass_seconds: float) -> float:
        """Convert CPU-pass seconds, inflated by the profiler, to clean-pass seconds."""
        return cpu_pass_seconds * self.sample_scale


@dataclass(frozen=True)
class Estimate:
    """A rule's estimated saving over the whole run, with how it was computed."""

    saving_s: float
    basis: str


class Rule(Protocol):
    """A diagnosis: detect a problem in the measurements and describe its fix."""

    name: str
    category: str

    def evaluate(self, context: RuleContext) -> list[Finding]: ...


def severity_of(saving_s: float, context: RuleContext) -> Severity:
    """Grade a saving by its share of the wall time, or of the p99 latency per request."""
    shares = [saving_s / context.wall_s] if context.wall_s > 0 else []
    requests = context.requests
    if requests.count and requests.p99_ms:
        per_request_ms = saving_s * 1000 / requests.count
        shares.append(per_request_ms / requests.p99_ms)
    share = max(shares, default=0.0)
    if share >= HIGH_SAVING_SHARE:
        return "high"
    if share >= MEDIUM_SAVING_SHARE:
        return "medium"
    return "low"


def make_finding(
    rule: Rule,
    context: RuleContext,
    *,
    stage: str,
    title: str,
    evidence: str,
    estimate: Estimate,
    fix: str,
    code_sketch: str,
    locations: Sequence[str] = (),
) -> Finding:
    return Finding(
        rule=rule.name,
        category=rule.category,
        stage=stage,
        severity=severity_of(estimate.saving_s, context),
        title=title,
        evidence=evidence,
        estimated_saving_ms=estimate.saving_s * 1000,
        saving_basis=estimate.basis,
        fix=fix,
        code_sketch=code_sketch,
        locations=list(locations),
        saving_per_request_ms=(
            estimate.saving_s * 1000 / context.requests.count if context.requests.count else None
        ),
        saving_share=estimate.saving_s / context.wall_s if context.wall_s > 0 else 0.0,
    )


def format_ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    if milliseconds >= 100:
        return f"{milliseconds:,.0f} ms"
    return f"{milliseconds:.2f} ms"
