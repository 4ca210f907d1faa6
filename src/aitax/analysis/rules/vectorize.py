"""Row-wise pandas loops (`iterrows`, `itertuples`, `apply(axis=1)`) that a vectorized form replaces."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.model.run import Finding

# Fraction of a row loop's time that vectorizing removes. Column operations on a
# DataFrame typically run 10 to 100 times faster than a Python loop over its rows,
# so the estimate keeps 10 % of the loop's time. An estimate, not a measurement.
VECTORIZED_REMAINDER = 0.10
# A loop must take at least this share of the run before the rule reports it.
MIN_SHARE = 0.02

_ROW_ITERATORS = frozenset({"iterrows", "itertuples"})


def _is_row_loop(frame: FrameInfo) -> bool:
    if frame.module is None or not frame.module.startswith("pandas"):
        return False
    name = frame.function.rsplit(".", 1)[-1]
    if name in _ROW_ITERATORS:
        return True
    # DataFrame.apply(axis=1) runs its row function through FrameColumnApply's
    # methods; the class name alone is its class body, run when pandas is imported.
    return frame.module == "pandas.core.apply" and "FrameColumnApply." in frame.function


def _loop_kind(frame: FrameInfo) -> str:
    if "FrameColumnApply." in frame.function:
        return "apply(axis=1)"
    return frame.function.rsplit(".", 1)[-1]


@dataclass
class _Loop:
    owner: FrameInfo
    kind: str
    seconds: float = 0.0


class VectorizeRule:
    name = "pandas-row-loop"
    category = "vectorize"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        loops = self._find_loops(context)
        findings = []
        for loop in loops.values():
            seconds = context.scaled(loop.seconds)
            if context.wall_s <= 0 or seconds / context.wall_s < MIN_SHARE:
                continue
            findings.append(self._finding(context, loop, seconds))
        return findings

    def _find_loops(self, context: RuleContext) -> dict[FrameInfo, _Loop]:
        """Find the user functions that loop over rows, and the time spent under them."""
        owners: dict[FrameInfo, str] = {}
        for sample in context.samples:
            for index, frame in enumerate(sample.frames):
                if _is_row_loop(frame):
                    owner = _innermost_user_frame(sample.frames[:index])
                    if owner is not None:
                        owners[owner] = _loop_kind(frame)
                    break

        loops: dict[FrameInfo, _Loop] = {}
        time_under: dict[FrameInfo, float] = defaultdict(float)
        for sample in context.samples:
            for frame in set(sample.frames) & owners.keys():
                time_under[frame] += sample.seconds
        for owner, kind in owners.items():
            loops[owner] = _Loop(owner, kind, time_under[owner])
        return loops

    def _finding(self, context: RuleContext, loop: _Loop, seconds: float) -> Finding:
        stage = _stage_of(context, loop.owner)
        saving = seconds * (1 - VECTORIZED_REMAINDER)
        kind = loop.kind
        return make_finding(
            self,
            context,
            stage=stage,
            title=f"Row-wise pandas loop in {loop.owner.function}",
            evidence=(
                f"{loop.owner.function} ({loop.owner.location}) loops over rows with {kind}; "
                f"{format_ms(seconds)} of the run ({seconds / context.wall_s:.0%}) is spent under it."
            ),
            estimate=Estimate(
                saving,
                f"{format_ms(seconds)} under the loop, of which vectorized column operations "
                f"are assumed to keep {VECTORIZED_REMAINDER:.0%} (they typically run 10-100x faster)",
            ),
            fix=(
                "Compute the features with column operations on the whole frame "
                "(arithmetic on Series, np.where, DataFrame.eval) instead of a Python loop over rows."
            ),
            code_sketch=(
                "# before\n"
                "rows = [derive(row) for _, row in df.iterrows()]\n"
                "# after\n"
                "df['ratio'] = df['a'] / df['b']\n"
                "df['z'] = (df['x'] - means['x']) / stds['x']"
            ),
            locations=[loop.owner.location],
        )


def _innermost_user_frame(frames: tuple[FrameInfo, ...]) -> FrameInfo | None:
    for frame in reversed(frames):
        if frame.user_code:
            return frame
    return None


def _stage_of(context: RuleContext, owner: FrameInfo) -> str:
    seconds: dict[str, float] = defaultdict(float)
    for sample in context.samples:
        if owner in sample.frames:
            seconds[sample.stage] += sample.seconds
    return max(seconds, key=seconds.__getitem__) if seconds else "other"
