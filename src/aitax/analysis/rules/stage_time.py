"""Clean-pass time of a subset of CPU-pass samples, scaled stage by stage.

The CPU profiler slows Python code far more than C code, so a single run-wide
factor (`RuleContext.scaled`) misplaces time between a Python-heavy start-up
and a C-heavy stage. Inside a marked stage, a subset's share of the stage's
samples, applied to the stage's clean-pass time, keeps each stage's total right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from aitax.analysis.rules.base import RuleContext
from aitax.analysis.samples import Sample


def sampled_by_stage(samples: Iterable[Sample]) -> dict[str, float]:
    """Sum CPU-pass seconds by marked stage. The key "" is for samples outside marked stages."""
    seconds: dict[str, float] = defaultdict(float)
    for sample in samples:
        seconds[sample.marked_stage or ""] += sample.seconds
    return seconds


def clean_seconds(context: RuleContext, subset: Iterable[Sample]) -> float:
    """Return the clean-pass seconds of `subset`, a part of `context.samples`."""
    totals = sampled_by_stage(context.samples)
    return sum(
        stage_share_seconds(context, stage, seconds, totals)
        for stage, seconds in sampled_by_stage(subset).items()
    )


def stage_share_seconds(
    context: RuleContext, stage: str, sampled_s: float, totals: dict[str, float]
) -> float:
    """Turn `sampled_s` CPU-pass seconds in `stage` into clean-pass seconds."""
    marked = context.stage(stage) if stage else None
    if marked is None or marked.source != "marked" or not totals.get(stage):
        return context.scaled(sampled_s)
    return marked.total_s * sampled_s / totals[stage]
