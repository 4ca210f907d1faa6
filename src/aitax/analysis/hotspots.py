"""Hotspots: functions ranked by self time in the CPU pass."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aitax.analysis.classify import IDLE
from aitax.analysis.frames import FrameInfo, is_harness_frame, is_pseudo_frame
from aitax.analysis.samples import Sample
from aitax.model.run import Hotspot

DEFAULT_HOTSPOT_COUNT = 50

_FunctionKey = tuple[str, str, int]


@dataclass
class _Totals:
    self_s: float = 0.0
    total_s: float = 0.0
    user_code: bool = False
    self_by_stage: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    total_by_stage: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def rank_hotspots(samples: Sequence[Sample], limit: int = DEFAULT_HOTSPOT_COUNT) -> list[Hotspot]:
    """Rank functions by self time, with cumulative time as the tie-breaker.

    A recursive function counts once per sample in its cumulative time. Idle
    samples, those that the classifier puts in IDLE because they wait for work
    outside marked stages, are left out: waiting for work is not a hotspot. A
    blocking call inside a marked stage, such as `sleep` or `lock.acquire`, is
    the stage's time and stays. Frames that are not the target's code are left
    out too (see _is_target_frame), and the self time of a sample whose leaf is
    one of them counts for no function.
    """
    samples = [sample for sample in samples if sample.stage != IDLE]
    totals = _accumulate(samples)
    sample_s = sum(sample.seconds for sample in samples)
    ordered = sorted(totals.items(), key=lambda item: (-item[1].self_s, -item[1].total_s, item[0]))

    hotspots = []
    for rank, ((function, file, line), entry) in enumerate(ordered[:limit], start=1):
        by_stage = entry.self_by_stage or entry.total_by_stage
        hotspots.append(
            Hotspot(
                rank=rank,
                function=function,
                file=file,
                line=line,
                stage=max(by_stage, key=by_stage.__getitem__),
                self_s=entry.self_s,
                total_s=entry.total_s,
                share=entry.self_s / sample_s if sample_s > 0 else 0.0,
                user_code=entry.user_code,
            )
        )
    return hotspots


def _target_frames(frames: Sequence[FrameInfo]) -> list[FrameInfo]:
    """Keep the frames of the target's own code and of the libraries and builtins it calls.

    Left out: pseudo-frames, aitax's frames, and builtins that an aitax frame
    called, such as `ContextVar.set` and `thread_time_ns` in the markers.
    """
    # NOTE: build_samples drops aitax's frames before ranking, so a builtin that
    # the markers called arrives here with the target's frame as its caller and
    # stays. build_samples must drop such builtins with their caller to fix that.
    kept = []
    for index, frame in enumerate(frames):
        if is_pseudo_frame(frame) or is_harness_frame(frame):
            continue
        caller = frames[index - 1] if index > 0 else None
        if frame.builtin and caller is not None and is_harness_frame(caller):
            continue
        kept.append(frame)
    return kept


def _accumulate(samples: Sequence[Sample]) -> dict[_FunctionKey, _Totals]:
    totals: dict[_FunctionKey, _Totals] = defaultdict(_Totals)
    for sample in samples:
        frames = _target_frames(sample.frames)
        leaf = sample.frames[-1]
        if frames and frames[-1] is leaf:
            leaf_entry = totals[(leaf.function, leaf.file, leaf.line)]
            leaf_entry.self_s += sample.seconds
            leaf_entry.self_by_stage[sample.stage] += sample.seconds

        seen: set[_FunctionKey] = set()
        for frame in frames:
            key = (frame.function, frame.file, frame.line)
            if key in seen:
                continue
            seen.add(key)
            entry = totals[key]
            entry.total_s += sample.seconds
            entry.total_by_stage[sample.stage] += sample.seconds
            entry.user_code = frame.user_code
    return totals
