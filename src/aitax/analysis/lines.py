"""Line timings from the line pass, with each function's stage taken from the CPU pass."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aitax.analysis.samples import Sample
from aitax.model.run import LineProfile, LineTiming


def stage_by_function(samples: Sequence[Sample]) -> dict[tuple[str, int], str]:
    """Map (file, first line) of each function to the stage where it spent most time."""
    seconds: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        for frame in {(f.file, f.line) for f in sample.frames}:
            seconds[frame][sample.stage] += sample.seconds
    return {key: max(by_stage, key=by_stage.__getitem__) for key, by_stage in seconds.items()}


def line_profiles(
    results: Sequence[dict[str, Any]], stages: dict[tuple[str, int], str]
) -> list[LineProfile]:
    """Turn the line pass's results into line profiles, in the order the functions were chosen.

    Functions that could not be profiled come last.
    """
    profiles = [_profile(result, stages) for result in results]
    return sorted(profiles, key=lambda profile: not profile.profiled)


def _profile(result: dict[str, Any], stages: dict[tuple[str, int], str]) -> LineProfile:
    file = str(result.get("file") or "")
    line = int(result.get("line") or 0)
    stage = stages.get((file, line), "other")
    label = str(result.get("function") or result["label"])
    if "lines" not in result:
        return LineProfile(
            label, file, line, stage, profiled=False, reason=str(result.get("reason"))
        )

    rows = result["lines"]
    total = sum(float(row[2]) for row in rows)
    timings = [
        LineTiming(
            lineno=int(lineno),
            hits=int(hits),
            time_s=float(seconds),
            per_hit_us=float(seconds) / int(hits) * 1e6 if int(hits) else None,
            share=float(seconds) / total if total > 0 else 0.0,
            source=str(source),
        )
        for lineno, hits, seconds, source in rows
    ]
    return LineProfile(label, file, line, stage, profiled=True, total_s=total, lines=timings)
