"""Line heatmaps for the HTML report: which functions and lines to show, and their anchors.

The size policy keeps the page small for runs that line-profiled many long
functions: at most `MAX_HEATMAP_FUNCTIONS` functions (hottest first), at most
`MAX_LINES_PER_FUNCTION` lines per function (a window around its hottest line),
at most `MAX_HEATMAP_LINES` lines in all, and source text cut at
`MAX_SOURCE_CHARACTERS`. The page notes each of these limits that applied.

Anchor ids are built from the function's position on the page and the line
number, both integers, so no text from the profiled program ends up in an id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from aitax.model.run import LineProfile, LineTiming

MAX_HEATMAP_FUNCTIONS: Final = 20
MAX_LINES_PER_FUNCTION: Final = 400
MAX_HEATMAP_LINES: Final = 2000
MAX_UNPROFILED_FUNCTIONS: Final = 50
MAX_SOURCE_CHARACTERS: Final = 240

NO_LINES_REASON: Final = "line_profiler returned no line timings for it"

_LINE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class HeatmapRow:
    """One measured source line as the heatmap draws it."""

    timing: LineTiming
    anchor: str
    source: str
    hottest: bool
    after_gap: bool

    @property
    def share_style(self) -> str:
        """The CSS custom property that sizes the line's bar and tints its number."""
        share = self.timing.share if math.isfinite(self.timing.share) else 0.0
        return f"--share: {min(max(share, 0.0), 1.0):.3f}"


@dataclass(frozen=True)
class Heatmap:
    """The shown lines of one profiled function."""

    profile: LineProfile
    anchor: str
    rows: list[HeatmapRow]
    hottest: LineTiming | None
    line_count: int

    @property
    def is_capped(self) -> bool:
        return len(self.rows) < self.line_count

    @property
    def last_line(self) -> int:
        return max(timing.lineno for timing in self.profile.lines)

    def row_anchor(self, lineno: int) -> str | None:
        """Return the anchor of line `lineno` when the heatmap shows it."""
        return next((row.anchor for row in self.rows if row.timing.lineno == lineno), None)


@dataclass(frozen=True)
class LineHeatmaps:
    """Everything the line-profile section shows, after the size policy."""

    heatmaps: list[Heatmap]
    profiled_total: int
    not_profiled: list[LineProfile]
    not_profiled_total: int

    @property
    def lines_capped(self) -> bool:
        return any(heatmap.is_capped for heatmap in self.heatmaps)

    @property
    def sources_cut(self) -> bool:
        return any(
            len(row.timing.source) > MAX_SOURCE_CHARACTERS
            for heatmap in self.heatmaps
            for row in heatmap.rows
        )

    def location_links(self, locations: Iterable[str]) -> dict[str, str]:
        """Map each "file:line" location inside a shown function to the `#anchor` it links to.

        A location links to its own line when the heatmap shows that line, and
        to the function otherwise. Locations outside every shown function are
        left out.
        """
        links: dict[str, str] = {}
        for location in locations:
            anchor = self._anchor_for(location)
            if anchor is not None:
                links[location] = f"#{anchor}"
        return links

    def _anchor_for(self, location: str) -> str | None:
        file, separator, line_text = location.rpartition(":")
        if not separator or not _LINE_NUMBER.fullmatch(line_text):
            return None
        line = int(line_text)

        for heatmap in self.heatmaps:
            if heatmap.profile.file != file:
                continue
            row_anchor = heatmap.row_anchor(line)
            if row_anchor is not None:
                return row_anchor
            if heatmap.profile.line <= line <= heatmap.last_line:
                return heatmap.anchor
        return None


def build_heatmaps(profiles: Sequence[LineProfile]) -> LineHeatmaps:
    """Choose the functions and lines to show, hottest function first, within the size policy."""
    measured = [profile for profile in profiles if profile.profiled and profile.lines]
    measured.sort(key=lambda profile: -_finite_or_zero(profile.total_s))
    unmeasured = [profile for profile in profiles if not (profile.profiled and profile.lines)]

    heatmaps: list[Heatmap] = []
    budget = MAX_HEATMAP_LINES
    for profile in measured[:MAX_HEATMAP_FUNCTIONS]:
        if budget <= 0:
            break
        heatmap = _heatmap(profile, len(heatmaps) + 1, min(MAX_LINES_PER_FUNCTION, budget))
        heatmaps.append(heatmap)
        budget -= len(heatmap.rows)

    return LineHeatmaps(
        heatmaps=heatmaps,
        profiled_total=len(measured),
        not_profiled=unmeasured[:MAX_UNPROFILED_FUNCTIONS],
        not_profiled_total=len(unmeasured),
    )


def unprofiled_reason(profile: LineProfile) -> str:
    """Say why a function has no line timings, even when the record gives no reason."""
    return profile.reason or NO_LINES_REASON


def _heatmap(profile: LineProfile, position: int, limit: int) -> Heatmap:
    timings = sorted(profile.lines, key=lambda timing: timing.lineno)
    hottest_index = _hottest_index(timings)
    start, stop = _window(len(timings), hottest_index or 0, limit)
    anchor = f"lines-{position}"

    rows: list[HeatmapRow] = []
    previous: int | None = None
    for index in range(start, stop):
        timing = timings[index]
        rows.append(
            HeatmapRow(
                timing=timing,
                anchor=f"{anchor}-L{timing.lineno}",
                source=_cut(timing.source),
                hottest=index == hottest_index,
                after_gap=previous is not None and timing.lineno > previous + 1,
            )
        )
        previous = timing.lineno

    hottest = timings[hottest_index] if hottest_index is not None else None
    return Heatmap(profile, anchor, rows, hottest, len(timings))


def _hottest_index(timings: Sequence[LineTiming]) -> int | None:
    """Return the index of the line with the most time, or None when no line took any time."""
    best: int | None = None
    for index, timing in enumerate(timings):
        seconds = _finite_or_zero(timing.time_s)
        if seconds > 0 and (best is None or seconds > timings[best].time_s):
            best = index
    return best


def _window(count: int, center: int, limit: int) -> tuple[int, int]:
    """Return the [start, stop) range of at most `limit` items, centered on `center` if possible."""
    if count <= limit:
        return 0, count
    start = max(0, min(center - limit // 2, count - limit))
    return start, start + limit


def _cut(source: str) -> str:
    if len(source) <= MAX_SOURCE_CHARACTERS:
        return source
    return source[: MAX_SOURCE_CHARACTERS - 1] + "…"


def _finite_or_zero(value: float) -> float:
    return value if math.isfinite(value) else 0.0
