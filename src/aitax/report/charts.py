"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG.

Every chart is drawn on its own `Figure` with the SVG canvas, so no GUI backend
or pyplot state is involved. Text is kept as `<text>` elements (no embedded
glyphs), and the ink color is replaced by `currentColor`, so axes and labels
follow the page's light or dark color scheme. Charts receive summaries only:
histograms and box plots are drawn from bins and percentiles, so no list of
raw samples ends up in the page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from html import escape
from typing import Any, Final

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.typing import RcKeyType

from aitax.model.run import RequestStats, StageMemory, StageStats
from aitax.report._format import format_bytes, format_seconds, format_share, visible_text

logger = logging.getLogger(__name__)

# A color that no chart uses on purpose. `_clean_svg` rewrites it to `currentColor`.
_INK: Final = "#010101"

_STANDARD_STAGE_COLORS: Final = {
    "feature_fetch": "#4e79a7",
    "feature_compute": "#59a14f",
    "inference": "#f28e2b",
    "logging": "#edc948",
    "other": "#9aa0a6",
}
_EXTRA_STAGE_COLORS: Final = ("#76b7b2", "#e15759", "#b07aa1", "#ff9da7", "#9c755f", "#6b8fd6")
_LATENCY_COLOR: Final = "#4e79a7"

_RC_PARAMS: Final[dict[RcKeyType, Any]] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "aitax-report",
    "text.usetex": False,
    "font.size": 9.5,
    "text.color": _INK,
    "axes.labelcolor": _INK,
    "axes.edgecolor": _INK,
    "axes.facecolor": "none",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "grid.color": _INK,
    "grid.alpha": 0.15,
    "figure.facecolor": "none",
    "savefig.transparent": True,
}

# Points to CSS pixels: SVG user units here are points, and a CSS pixel is 3/4 pt.
_PX_PER_PT: Final = 4 / 3

MAX_HISTOGRAM_BINS: Final = 40

# Charts cut longer stage names, and the stage table shows them in full.
MAX_LABEL_CHARACTERS: Final = 28


def stage_colors(stages: Sequence[StageStats]) -> dict[str, str]:
    """Assign each stage a color: fixed ones for the standard stages, a cycle for the rest."""
    return extend_stage_colors({}, [stage.name for stage in stages])


def extend_stage_colors(colors: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """Return `colors` plus a color for each name it lacks, continuing the same cycle.

    The memory pass names stages too (and adds `unmarked`), so its chart keeps
    the colors of the stage charts and gives new names the next free colors.
    """
    extended = dict(colors)
    extra_index = sum(1 for name in extended if name not in _STANDARD_STAGE_COLORS)
    for name in names:
        if name in extended:
            continue
        fixed = _STANDARD_STAGE_COLORS.get(name)
        if fixed is not None:
            extended[name] = fixed
            continue
        extended[name] = _EXTRA_STAGE_COLORS[extra_index % len(_EXTRA_STAGE_COLORS)]
        extra_index += 1
    return extended


def stage_label(stage: StageStats) -> str:
    """Return the stage name as drawn in charts, shortened, marking auto-classified stages."""
    name = _short_label(stage.name)
    return f"{name} (auto)" if stage.source == "auto" else name


def _short_label(name: str) -> str:
    visible = visible_text(name)
    if len(visible) > MAX_LABEL_CHARACTERS:
        return visible[: MAX_LABEL_CHARACTERS - 1] + "…"
    return visible


def stage_breakdown_svg(stages: Sequence[StageStats], colors: dict[str, str]) -> str | None:
    """Draw one horizontal bar per stage, longest first, labelled with time and share."""
    ranked = sorted(stages, key=lambda stage: stage.total_s, reverse=True)
    if not ranked or max(stage.total_s for stage in ranked) <= 0:
        return None

    with _chart_style():
        figure = _new_figure(width_in=5.2, height_in=0.42 + 0.3 * len(ranked))
        axes = figure.add_subplot()
        positions = np.arange(len(ranked))
        totals = [stage.total_s for stage in ranked]
        axes.barh(positions, totals, height=0.62, color=[colors[s.name] for s in ranked])

        axes.set_yticks(positions, labels=[stage_label(stage) for stage in ranked])
        axes.invert_yaxis()
        for position, stage in enumerate(ranked):
            value = f"{format_seconds(stage.total_s)} · {format_share(stage.share)}"
            axes.annotate(
                value,
                (stage.total_s, position),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
            )

        axes.set_xlim(0, max(totals) * 1.4)
        axes.xaxis.set_visible(False)
        _hide_spines(axes, keep=("left",))
        axes.tick_params(axis="y", length=0)
        _disable_mathtext(axes)
        return _to_svg(figure, "stage-breakdown", "Wall time per stage")


def stage_share_svg(stages: Sequence[StageStats], colors: dict[str, str]) -> str | None:
    """Draw a single stacked bar of the stages' shares of wall time, in pipeline order.

    Segments wide enough for it carry their percentage. The bar has no legend:
    the page lists the stages with their colors beside it.
    """
    nonzero = [stage for stage in stages if stage.share > 0]
    if not nonzero:
        return None

    with _chart_style():
        figure = _new_figure(width_in=11.0, height_in=0.42)
        axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
        left = 0.0
        for stage in nonzero:
            color = colors[stage.name]
            axes.barh(0, stage.share, left=left, height=1.0, color=color, edgecolor="none")
            if stage.share >= 0.05:
                axes.text(
                    left + stage.share / 2,
                    0,
                    format_share(stage.share),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color=_text_color_on(color),
                )
            left += stage.share

        axes.set_xlim(0, max(left, 1.0))
        axes.set_ylim(-0.5, 0.5)
        axes.set_axis_off()
        return _to_svg(figure, "stage-share", "Share of wall time per stage", tight=False)


def latency_histogram_svg(requests: RequestStats) -> str | None:
    """Draw a histogram of request latencies with the p50, p95 and p99 marked."""
    samples = _finite(requests.latencies_ms)
    if samples.size == 0:
        return None
    counts, edges = histogram_bins(samples)

    with _chart_style():
        figure = _new_figure(width_in=5.4, height_in=2.7)
        axes = figure.add_subplot()
        axes.stairs(counts, edges, fill=True, color=_LATENCY_COLOR, alpha=0.85)
        axes.set_ylim(0, max(int(counts.max()), 1) * 1.15)
        _mark_percentiles(axes, requests)

        axes.set_xlabel("latency per request (ms)")
        axes.set_ylabel("requests")
        axes.grid(axis="y")
        axes.set_axisbelow(True)
        _soften_spines(axes)
        return _to_svg(figure, "latency-histogram", "Histogram of request latency")


def memory_by_stage_svg(stages: Sequence[StageMemory], colors: dict[str, str]) -> str | None:
    """Draw one horizontal bar per stage of the bytes it allocated, largest first.

    Bars are labelled with the bytes and their share of all bytes allocated in
    the drawn stages.
    """
    ranked = sorted(stages, key=lambda stage: stage.allocated_bytes, reverse=True)
    if not ranked or ranked[0].allocated_bytes <= 0:
        return None
    total = sum(max(stage.allocated_bytes, 0) for stage in ranked)

    with _chart_style():
        figure = _new_figure(width_in=5.2, height_in=0.42 + 0.3 * len(ranked))
        axes = figure.add_subplot()
        positions = np.arange(len(ranked))
        sizes = [max(stage.allocated_bytes, 0) for stage in ranked]
        axes.barh(positions, sizes, height=0.62, color=[colors[s.name] for s in ranked])

        axes.set_yticks(positions, labels=[_short_label(stage.name) for stage in ranked])
        axes.invert_yaxis()
        for position, size in enumerate(sizes):
            value = f"{format_bytes(size)} · {format_share(size / total)}"
            axes.annotate(
                value,
                (size, position),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8.5,
            )

        axes.set_xlim(0, max(sizes) * 1.45)
        axes.xaxis.set_visible(False)
        _hide_spines(axes, keep=("left",))
        axes.tick_params(axis="y", length=0)
        _disable_mathtext(axes)
        return _to_svg(figure, "memory-by-stage", "Bytes allocated per stage")


def histogram_bins(samples: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[Any, Any]:
    """Bin samples with numpy's automatic rule, capped at `MAX_HISTOGRAM_BINS` bins."""
    edges = np.histogram_bin_edges(samples, bins="auto")
    if edges.size - 1 > MAX_HISTOGRAM_BINS:
        edges = np.histogram_bin_edges(samples, bins=MAX_HISTOGRAM_BINS)
    counts, edges = np.histogram(samples, bins=edges)
    return counts, edges


def stage_distributions_svg(stages: Sequence[StageStats], colors: dict[str, str]) -> str | None:
    """Draw a box plot of per-call durations for each stage that recorded them.

    Boxes span p25 to p75 with a line at the median, and whiskers span p5 to p95.
    The x axis turns logarithmic when stage durations differ by more than 50x.
    """
    measured = [stage for stage in stages if _finite(stage.durations_ms).size > 0]
    if not measured:
        return None
    statistics = [_box_statistics(stage) for stage in measured]

    with _chart_style():
        figure = _new_figure(width_in=5.4, height_in=0.75 + 0.34 * len(measured))
        axes = figure.add_subplot()
        boxes = axes.bxp(
            statistics,
            orientation="horizontal",
            showfliers=False,
            patch_artist=True,
            widths=0.55,
            medianprops={"color": _INK, "linewidth": 1.4},
            whiskerprops={"color": _INK, "alpha": 0.6},
            capprops={"color": _INK, "alpha": 0.6},
        )
        for box, stage in zip(boxes["boxes"], measured, strict=True):
            box.set_facecolor(colors[stage.name])
            box.set_edgecolor(colors[stage.name])

        axes.invert_yaxis()
        _choose_duration_scale(axes, statistics)
        axes.set_xlabel("duration per call (ms)")
        axes.grid(axis="x", which="major")
        axes.set_axisbelow(True)
        axes.tick_params(axis="y", length=0)
        _soften_spines(axes)
        _disable_mathtext(axes)
        return _to_svg(figure, "stage-distributions", "Box plot of stage durations")


def _box_statistics(stage: StageStats) -> dict[str, Any]:
    samples = _finite(stage.durations_ms)
    p5, p25, p50, p75, p95 = np.percentile(samples, [5, 25, 50, 75, 95])
    return {
        "label": stage_label(stage),
        "med": p50,
        "q1": p25,
        "q3": p75,
        "whislo": p5,
        "whishi": p95,
        "fliers": [],
    }


def _choose_duration_scale(axes: Axes, statistics: Sequence[dict[str, Any]]) -> None:
    lowest = min(float(entry["whislo"]) for entry in statistics)
    highest = max(float(entry["whishi"]) for entry in statistics)
    if lowest > 0 and highest / lowest > 50:
        axes.set_xscale("log")


def _finite(values: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    array = np.asarray(values, dtype=np.float64)
    finite: np.ndarray[Any, np.dtype[np.float64]] = array[np.isfinite(array)]
    return finite


def _mark_percentiles(axes: Axes, requests: RequestStats) -> None:
    marks = (
        ("p50", requests.p50_ms, "-"),
        ("p95", requests.p95_ms, "--"),
        ("p99", requests.p99_ms, ":"),
    )
    for name, value, style in marks:
        if value is None:
            continue
        axes.axvline(value, color=_INK, linestyle=style, linewidth=1.0, alpha=0.8)
        axes.annotate(
            name,
            (value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -2),
            textcoords="offset points",
            va="top",
            fontsize=8,
        )


@contextlib.contextmanager
def _chart_style() -> Iterator[None]:
    """Apply the report's matplotlib settings while a chart is drawn and saved.

    NOTE: `rc_context` changes matplotlib's global settings, so charts must not be
    drawn from several threads at once.
    """
    with matplotlib.rc_context(_RC_PARAMS), warnings.catch_warnings():
        # The browser draws the text (svg.fonttype "none"), so matplotlib's warnings
        # about glyphs missing from its own fonts do not apply.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font")
        yield


def _new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in))
    FigureCanvasSVG(figure)
    return figure


def _hide_spines(axes: Axes, keep: Sequence[str] = ()) -> None:
    for name, spine in axes.spines.items():
        spine.set_visible(name in keep)
        spine.set_alpha(0.35)


def _soften_spines(axes: Axes) -> None:
    for spine in axes.spines.values():
        spine.set_alpha(0.35)


def _disable_mathtext(axes: Axes) -> None:
    """Draw every label literally: a `$` in a stage name must not start mathtext."""
    texts: list[Text] = [*axes.get_yticklabels(), *axes.get_xticklabels(), *axes.texts]
    for text in texts:
        text.set_parse_math(False)


def _text_color_on(background: str) -> str:
    red, green, blue = (int(background[index : index + 2], 16) for index in (1, 3, 5))
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return "#1b1d21" if luminance > 150 else "#ffffff"


def _to_svg(figure: Figure, chart_id: str, label: str, tight: bool = True) -> str:
    buffer = io.StringIO()
    # A tight bounding box grows or shrinks the figure to fit its labels, so long
    # stage names are never clipped.
    figure.savefig(
        buffer,
        format="svg",
        metadata={"Date": None},
        bbox_inches="tight" if tight else None,
        pad_inches=0.04,
    )
    svg = _clean_svg(buffer.getvalue(), chart_id, label)
    logger.debug("Drew chart %s: %d characters of SVG", chart_id, len(svg))
    return svg


_TAG = re.compile(r"<[^<>]*>")
_NAMESPACE = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')
_VERSION = re.compile(r'\s+version="1\.1"')
_SIZE_IN_POINTS = re.compile(r'width="([\d.]+)pt" height="([\d.]+)pt"')
_FONT_FAMILY = re.compile(r"font-family: [^;\"]*;?\s*")
_ID_REFERENCE = re.compile(r'(\bid="|url\(#|xlink:href="#)')


def _clean_svg(svg: str, chart_id: str, label: str) -> str:
    """Make matplotlib's SVG document fit for inlining into the HTML page.

    Drops the XML prolog, DOCTYPE, metadata and namespace URLs, sizes the chart in
    CSS pixels, lets text inherit the page font, maps the ink color to
    `currentColor`, and prefixes every id so that several charts can share a page.
    Only tags are rewritten, never text nodes, so stage names are drawn as given.
    """
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    svg = _TAG.sub(lambda tag: _clean_tag(tag.group(), chart_id), svg)
    attributes = f'<svg class="chart-svg" role="img" aria-label="{escape(label)}"'
    return svg.replace("<svg", attributes, 1).strip()


def _clean_tag(tag: str, chart_id: str) -> str:
    if tag.startswith("<svg"):
        tag = _NAMESPACE.sub("", tag)
        tag = _VERSION.sub("", tag)
        tag = _SIZE_IN_POINTS.sub(_size_in_pixels, tag)
    tag = tag.replace(_INK, "currentColor")
    tag = _FONT_FAMILY.sub("", tag)
    return _ID_REFERENCE.sub(rf"\g<1>{chart_id}-", tag)


def _size_in_pixels(match: re.Match[str]) -> str:
    width = float(match.group(1)) * _PX_PER_PT
    height = float(match.group(2)) * _PX_PER_PT
    return f'width="{width:.0f}" height="{height:.0f}"'
