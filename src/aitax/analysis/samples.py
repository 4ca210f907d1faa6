"""CPU-pass samples: stacks with their duration and the stage they were taken in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aitax.analysis.classify import DEFAULT_RULES, ModuleRule, classify
from aitax.analysis.frames import FrameInfo, ModuleResolver, is_harness_frame, parse_frame


@dataclass(frozen=True, slots=True)
class Sample:
    """One CPU-pass sample. `frames` run from the root to the leaf."""

    frames: tuple[FrameInfo, ...]
    seconds: float
    marked_stage: str | None
    stage: str

    @property
    def auto(self) -> bool:
        return self.marked_stage is None


def build_samples(
    frame_records: Sequence[tuple[Sequence[str], float]],
    labels: Sequence[str | None],
    resolver: ModuleResolver,
    user_rules: Sequence[ModuleRule] = (),
    default_rules: Sequence[ModuleRule] = DEFAULT_RULES,
) -> list[Sample]:
    """Turn pyinstrument frame records and their stage labels into classified samples.

    Samples that contain only aitax's own frames (its start and stop) are dropped.
    """
    if len(labels) != len(frame_records):
        raise ValueError(
            f"{len(labels)} stage labels for {len(frame_records)} samples; the capture is damaged"
        )

    # Frames recur in thousands of samples: parse each identifier once, and drop
    # aitax's own frames with the same lookup (None marks a harness frame).
    parsed: dict[str, FrameInfo | None] = {}
    samples: list[Sample] = []
    for (stack, seconds), label in zip(frame_records, labels, strict=True):
        frames = _target_frames(stack, resolver, parsed)
        if not frames:
            continue
        stage = label if label is not None else classify(frames, user_rules, default_rules)
        samples.append(Sample(tuple(frames), float(seconds), label, stage))
    return samples


def _target_frames(
    stack: Sequence[str], resolver: ModuleResolver, parsed: dict[str, FrameInfo | None]
) -> list[FrameInfo]:
    """Return the target's frames of one stack: aitax's own frames are dropped, and so
    is a C function that aitax's code called (a marker's ContextVar.set, say)."""
    frames: list[FrameInfo] = []
    caller_dropped = False
    for frame_id in stack:
        frame = _parse_cached(frame_id, resolver, parsed)
        if frame is None or (frame.builtin and caller_dropped):
            caller_dropped = True
            continue
        frames.append(frame)
        caller_dropped = False
    return frames


def _parse_cached(
    frame_id: str, resolver: ModuleResolver, cache: dict[str, FrameInfo | None]
) -> FrameInfo | None:
    if frame_id in cache:
        return cache[frame_id]
    frame = parse_frame(frame_id, resolver)
    cache[frame_id] = None if is_harness_frame(frame) else frame
    return cache[frame_id]
