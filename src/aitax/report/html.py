"""The self-contained HTML report of one run.

The page is rendered from Jinja2 templates with autoescaping on. CSS, the
table-sorting script and the charts (inline SVG) are embedded, so the file
makes no network request and can be mailed or attached to a ticket. The only
data handed to the script goes in through `|tojson`. A Content-Security-Policy
allows that one script by its hash and blocks every fetch.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import math
import os
import shlex
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from aitax.analysis.rules.base import HIGH_SAVING_SHARE, MEDIUM_SAVING_SHARE
from aitax.model.run import (
    AllocationSite,
    Finding,
    Hotspot,
    LeakSuspect,
    MemoryProfile,
    Run,
    StageStats,
)
from aitax.report import _format, charts
from aitax.report._heatmap import (
    MAX_HEATMAP_FUNCTIONS,
    MAX_HEATMAP_LINES,
    MAX_LINES_PER_FUNCTION,
    MAX_SOURCE_CHARACTERS,
    LineHeatmaps,
    build_heatmaps,
    unprofiled_reason,
)
from aitax.report._memory import (
    LINE_PASS,
    MEMORY_PASS,
    MemoryView,
    allocation_sort_keys,
    build_memory_view,
    memory_stage_sort_keys,
    pass_result,
)

logger = logging.getLogger(__name__)

MAX_HOTSPOT_ROWS: Final = 200
MAX_DISTRIBUTION_STAGES: Final = 20
MAX_BREAKDOWN_STAGES: Final = 12
TOP_FINDINGS: Final = 3


@dataclass(frozen=True)
class Kpi:
    """One headline number on the first screen."""

    label: str
    value: str
    detail: str = ""
    tone: str = ""


@dataclass(frozen=True)
class StageRow:
    """A stage with the color that represents it in every chart."""

    stage: StageStats
    color: str

    @property
    def bar_width(self) -> str:
        """The share as a CSS percentage, clamped to 0-100%."""
        share = self.stage.share if math.isfinite(self.stage.share) else 0.0
        return f"{min(max(share, 0.0), 1.0) * 100:.1f}%"


@dataclass(frozen=True)
class ArtifactLink:
    """An artifact path, with `href` set only when it is safe to link."""

    label: str
    path: str
    href: str | None


def render_html(run: Run, *, view_dir: str | None = None) -> str:
    """Render the report of `run` as one self-contained HTML page.

    `view_dir` is the run folder shown in the `aitax view` command. Without it
    the command shows the placeholder `DIR`.
    """
    context = _build_context(run, view_dir)
    html = _environment().get_template("report.html.j2").render(context)
    logger.debug("Rendered HTML report of %s: %d characters", run.target, len(html))
    return html


def write_html(run: Run, path: Path) -> None:
    """Render the report of `run` and write it to `path` atomically.

    The page is written to a temporary file in the same folder and moved over
    `path` with `os.replace`, so readers see either the old report or the new
    one. A file that already exists keeps its permission bits.
    """
    html = render_html(run, view_dir=str(path.parent))
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(html)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    logger.info("Wrote HTML report to %s", path)


@functools.cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("aitax.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    environment.filters.update(
        ms=_format.format_ms,
        seconds=_format.format_seconds,
        share=_format.format_share,
        rate=_format.format_rate,
        bytes=_format.format_bytes,
        cost=_format.format_cost,
        count=_format.format_count,
        us=_format.format_us,
    )
    environment.globals["unprofiled_reason"] = unprofiled_reason
    return environment


def _finalize(value: Any) -> Any:
    """Show `None` as a dash and control characters as escapes in every `{{ }}` output."""
    if value is None:
        return _format.MISSING
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return _format.visible_text(value)
    return value


def _build_context(run: Run, view_dir: str | None) -> dict[str, Any]:
    colors = charts.stage_colors(run.stages)
    ranked = _format.ranked_findings(run.findings)
    hotspots = sorted(run.hotspots, key=lambda hotspot: hotspot.rank)[:MAX_HOTSPOT_ROWS]
    stage_rows = [StageRow(stage, colors[stage.name]) for stage in run.stages]
    heatmaps = build_heatmaps(run.lines)
    memory = _memory_view(run.memory, colors)
    script = _static_text("sort.js")

    return {
        "run": run,
        "kpis": _kpis(run),
        "largest_stage": max(run.stages, key=lambda stage: stage.total_s, default=None),
        "high_count": sum(1 for finding in ranked if finding.severity == "high"),
        "top_findings": ranked[:TOP_FINDINGS],
        "findings": ranked,
        "severity_thresholds": {"high": HIGH_SAVING_SHARE, "medium": MEDIUM_SAVING_SHARE},
        "stage_rows": stage_rows,
        "has_auto_stages": any(stage.source == "auto" for stage in run.stages),
        "hotspots": hotspots,
        "hotspot_total": len(run.hotspots),
        "heatmaps": heatmaps,
        "heatmap_limits": _heatmap_limits(),
        "memory": memory,
        "line_pass": pass_result(run.passes, LINE_PASS),
        "memory_pass": pass_result(run.passes, MEMORY_PASS),
        "location_links": _location_links(heatmaps, ranked, hotspots, run.memory),
        "charts": _charts(run, colors, memory),
        "distribution_stage_count": _distribution_stage_count(run.stages),
        "max_breakdown_stages": MAX_BREAKDOWN_STAGES,
        "max_distribution_stages": MAX_DISTRIBUTION_STAGES,
        "command": shlex.join(run.environment.command),
        "packages": sorted(run.environment.packages.items(), key=lambda item: item[0].lower()),
        "artifacts": [_artifact_link(label, path) for label, path in run.artifacts.items()],
        "view_command": f"aitax view {shlex.quote(view_dir) if view_dir else 'DIR'}",
        "table_data": _table_data(run, hotspots, memory),
        "style": Markup(_static_text("report.css")),
        "script": Markup(script),
        "script_hash": _csp_hash(script),
    }


def _memory_view(profile: MemoryProfile | None, colors: dict[str, str]) -> MemoryView | None:
    if profile is None:
        return None
    memory_colors = charts.extend_stage_colors(colors, [stage.name for stage in profile.by_stage])
    return build_memory_view(profile, memory_colors)


def _heatmap_limits() -> dict[str, int]:
    return {
        "functions": MAX_HEATMAP_FUNCTIONS,
        "lines_per_function": MAX_LINES_PER_FUNCTION,
        "lines": MAX_HEATMAP_LINES,
        "source_characters": MAX_SOURCE_CHARACTERS,
    }


def _location_links(
    heatmaps: LineHeatmaps,
    findings: list[Finding],
    hotspots: list[Hotspot],
    memory: MemoryProfile | None,
) -> dict[str, str]:
    """Map every "file:line" that the page shows to its heatmap anchor, where it has one."""
    locations = [location for finding in findings for location in finding.locations]
    locations.extend(f"{hotspot.file}:{hotspot.line}" for hotspot in hotspots)
    if memory is not None:
        sites: list[AllocationSite | LeakSuspect] = [
            *memory.top_allocations,
            *memory.peak_locations,
            *memory.leak_suspects,
        ]
        locations.extend(f"{site.file}:{site.line}" for site in sites)
    return heatmaps.location_links(locations)


def _table_data(run: Run, hotspots: list[Hotspot], memory: MemoryView | None) -> dict[str, Any]:
    """Return the sort keys of every sortable table, keyed by its `data-sortable` name."""
    data: dict[str, Any] = {
        "stages": _stage_sort_keys(run.stages),
        "hotspots": _hotspot_sort_keys(hotspots),
    }
    if memory is not None:
        data["allocations"] = allocation_sort_keys(memory.top_allocations)
        data["memory-stages"] = memory_stage_sort_keys(memory.stage_rows)
    return data


def _kpis(run: Run) -> list[Kpi]:
    requests = run.requests
    cost = run.cost
    exit_tone = "good" if run.exit_code == 0 else "bad"
    return [
        Kpi("p50 latency", _format.format_ms(requests.p50_ms), _request_detail(run)),
        Kpi("p95 latency", _format.format_ms(requests.p95_ms)),
        Kpi(
            "p99 latency",
            _format.format_ms(requests.p99_ms),
            f"max {_format.format_ms(requests.max_ms)}" if requests.max_ms is not None else "",
        ),
        Kpi(
            "Throughput",
            _format.format_rate(requests.throughput_rps, "req/s"),
            _format.format_rate(requests.throughput_items_per_s, "items/s")
            if requests.throughput_items_per_s is not None
            else "",
        ),
        Kpi("Peak RSS", _format.format_bytes(run.peak_rss_bytes)),
        Kpi(
            "Cost per 1000 predictions",
            _format.format_cost(cost.per_1000_predictions),
            cost.basis,
        ),
        Kpi(
            "Wall time",
            _format.format_seconds(run.wall_s),
            f"CPU {_format.format_seconds(run.cpu_s)}",
        ),
        Kpi(
            "Exit status",
            str(run.exit_code),
            "target finished" if run.exit_code == 0 else "target failed",
            exit_tone,
        ),
    ]


def _request_detail(run: Run) -> str:
    if run.requests.count == 0:
        return "no requests marked"
    return f"{run.requests.count:,} requests, {run.requests.items:,} items"


def _charts(
    run: Run, colors: dict[str, str], memory: MemoryView | None
) -> dict[str, Markup | None]:
    measured = [stage for stage in run.stages if stage.durations_ms]
    drawn = {
        "breakdown": charts.stage_breakdown_svg(_longest(run.stages, MAX_BREAKDOWN_STAGES), colors),
        "share": charts.stage_share_svg(run.stages, colors),
        "latency": charts.latency_histogram_svg(run.requests),
        "distributions": charts.stage_distributions_svg(
            _longest(measured, MAX_DISTRIBUTION_STAGES), colors
        ),
        "memory": None,
    }
    if memory is not None:
        drawn["memory"] = charts.memory_by_stage_svg(memory.chart_stages, memory.colors)
    # The SVG comes from matplotlib, which escapes all text it draws.
    return {name: None if svg is None else Markup(svg) for name, svg in drawn.items()}


def _longest(stages: list[StageStats], limit: int) -> list[StageStats]:
    """Keep the `limit` stages with the most wall time, in their original order."""
    longest = sorted(stages, key=lambda stage: stage.total_s, reverse=True)[:limit]
    chosen = {id(stage) for stage in longest}
    return [stage for stage in stages if id(stage) in chosen]


def _distribution_stage_count(stages: list[StageStats]) -> int:
    return sum(1 for stage in stages if stage.durations_ms)


def _artifact_link(label: str, path: str) -> ArtifactLink:
    """Link `path` only when it is a relative path that stays inside the run folder."""
    parts = urlsplit(path)
    pure = PurePosixPath(path.replace("\\", "/"))
    is_inside = not (parts.scheme or parts.netloc or pure.is_absolute() or ".." in pure.parts)
    href = quote(pure.as_posix(), safe="/") if is_inside and path else None
    if href is None:
        logger.warning(
            "Artifact %r has path %r, which is not a relative path inside the run "
            "folder, so the report shows it without a link",
            label,
            path,
        )
    return ArtifactLink(label=label, path=path, href=href)


def _stage_sort_keys(stages: list[StageStats]) -> list[list[Any]]:
    return [
        [
            stage.name,
            stage.source,
            stage.total_s,
            stage.cpu_s,
            stage.share,
            stage.count,
            stage.p50_ms,
            stage.p95_ms,
            stage.p99_ms,
        ]
        for stage in stages
    ]


def _hotspot_sort_keys(hotspots: list[Hotspot]) -> list[list[Any]]:
    return [
        [
            hotspot.rank,
            hotspot.function,
            f"{hotspot.file}:{hotspot.line:09d}",
            hotspot.stage,
            hotspot.self_s,
            hotspot.total_s,
            hotspot.share,
        ]
        for hotspot in hotspots
    ]


@functools.cache
def _static_text(name: str) -> str:
    return resources.files("aitax.report").joinpath("static", name).read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
