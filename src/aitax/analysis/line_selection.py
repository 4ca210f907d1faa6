"""Choose the functions that the line pass profiles, from the CPU pass's samples."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from aitax.analysis.frames import FrameInfo
from aitax.analysis.samples import Sample

DEFAULT_LINE_FUNCTIONS = 10

_FunctionKey = tuple[str, str, int]
# Module bodies run once, so there is no function for line_profiler to wrap.
_UNPROFILABLE = ("<module>", "<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<lambda>")


def _profilable(frame: FrameInfo) -> bool:
    """Return True for a user function whose source file the line pass can decorate."""
    if not frame.user_code or frame.builtin or frame.file.startswith("<"):
        return False
    return frame.function.rsplit(".", 1)[-1] not in _UNPROFILABLE


def choose_line_functions(
    samples: Sequence[Sample], count: int = DEFAULT_LINE_FUNCTIONS
) -> list[FrameInfo]:
    """Return up to `count` user functions, taken in turn from the top by self and by cumulative time.

    Self time finds the functions whose own lines are slow. Cumulative time finds
    the user functions that call slow library code, such as a row loop over pandas.
    """
    self_s: dict[_FunctionKey, float] = defaultdict(float)
    total_s: dict[_FunctionKey, float] = defaultdict(float)
    callee_s: dict[_FunctionKey, dict[_FunctionKey, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    frames: dict[_FunctionKey, FrameInfo] = {}
    for sample in samples:
        _add_sample(sample, self_s, total_s, callee_s, frames)

    by_self = sorted(self_s, key=lambda key: -self_s[key])
    by_total = [
        key
        for key in sorted(total_s, key=lambda key: -total_s[key])
        if not _passes_through(callee_s[key], total_s[key])
    ]
    chosen: list[_FunctionKey] = []
    for index in range(max(len(by_self), len(by_total))):
        for ranking in (by_self, by_total):
            if index < len(ranking) and ranking[index] not in chosen and len(chosen) < count:
                chosen.append(ranking[index])
    return [frames[key] for key in chosen]


# A function that spends at least this share of its time in one user function it
# calls, such as a main() that calls serve(), is left out of the cumulative
# ranking. Its line profile would show one line taking all the time.
PASS_THROUGH_SHARE = 0.9


def _passes_through(callees: dict[_FunctionKey, float], total: float) -> bool:
    return bool(callees) and total > 0 and max(callees.values()) >= PASS_THROUGH_SHARE * total


def _add_sample(
    sample: Sample,
    self_s: dict[_FunctionKey, float],
    total_s: dict[_FunctionKey, float],
    callee_s: dict[_FunctionKey, dict[_FunctionKey, float]],
    frames: dict[_FunctionKey, FrameInfo],
) -> None:
    user_frames = [frame for frame in sample.frames if _profilable(frame)]
    if not user_frames:
        return
    # Self time of a user function includes the library code it calls directly,
    # unless another user function is deeper in the stack.
    keys = [(f.function, f.file, f.line) for f in user_frames]
    self_s[keys[-1]] += sample.seconds
    for key, frame in zip(keys, user_frames, strict=True):
        frames[key] = frame
    for key in set(keys):
        total_s[key] += sample.seconds
    for caller, callee in {(a, b) for a, b in itertools.pairwise(keys) if a != b}:
        callee_s[caller][callee] += sample.seconds
