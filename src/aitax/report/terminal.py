"""A short terminal summary of one run, written to a rich `Console`.

The console decides about color: rich drops styles when the output is not a
terminal and drops colors when `NO_COLOR` is set, so nothing here forces them.
Every string from the profiled program is passed as `Text`, never as console
markup, so square brackets in a stage or function name print as they are.
"""

from __future__ import annotations

import logging
from typing import Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from aitax.model.run import ChildProcesses, Finding, LineProfile, LineTiming, Run, Severity
from aitax.report import _format

logger = logging.getLogger(__name__)

TOP_FINDINGS: Final = 3
TOP_LINE_FUNCTIONS: Final = 5
TOP_CHILD_PROCESSES: Final = 5
MAX_SOURCE_CHARACTERS: Final = 48

SEVERITY_STYLES: Final[dict[Severity, str]] = {
    "high": "bold red",
    "medium": "yellow",
    "low": "dim",
}


def print_summary(run: Run, console: Console) -> None:
    """Print the headline numbers, stages, hottest lines, top findings and notes of `run`."""
    console.print(_title(run))
    if run.partial:
        console.print(_partial_line(run))
    if run.exit_code != 0:
        console.print(_failure_line(run))

    console.print(_kpi_table(run))
    children = _children_block(run.child_processes)
    if children is not None:
        console.print(children)
    if run.stages:
        console.print(_stage_table(run))
    lines = _lines_block(run)
    if lines is not None:
        console.print(lines)
    console.print(_findings_block(run))
    if run.notes:
        console.print(_notes_block(run.notes))
    logger.debug("Printed terminal summary of %s", run.target)


def _plain(text: str) -> Text:
    return Text(_format.visible_text(text))


def _title(run: Run) -> Text:
    title = Text("aitax ", style="bold")
    title.append(_format.visible_text(run.target), style="bold")
    title.append(f"  started {_format.visible_text(run.started_at)}", style="dim")
    return title


def _partial_line(run: Run) -> Text:
    reason = _format.visible_text(run.stop_reason or "stopped before it finished")
    line = Text(f"Partial run: {reason}.", style="bold yellow")
    line.append(" The report holds what was measured until the stop.", style="yellow")
    return line


def _failure_line(run: Run) -> Text:
    line = Text(f"The target exited with status {run.exit_code}.", style="bold red")
    if run.traceback:
        last_line = run.traceback.strip().splitlines()[-1]
        line.append(" ")
        line.append(_format.visible_text(last_line), style="red")
    return line


def _kpi_table(run: Run) -> Table:
    requests = run.requests
    table = Table(
        title="Run", title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0)
    )
    table.add_column("metric", style="dim")
    table.add_column("value", justify="right")

    if requests.count == 0:
        table.add_row("requests", "none marked: wrap each prediction in `with aitax.request():`")
    else:
        table.add_row("requests", f"{requests.count:,} ({requests.items:,} items)")
    table.add_row(
        "latency p50 / p95 / p99",
        " / ".join(
            _format.format_ms(value)
            for value in (requests.p50_ms, requests.p95_ms, requests.p99_ms)
        ),
    )
    table.add_row(
        "throughput",
        f"{_format.format_rate(requests.throughput_rps, 'req/s')}, "
        f"{_format.format_rate(requests.throughput_items_per_s, 'items/s')}",
    )
    table.add_row("peak RSS", _format.format_bytes(run.peak_rss_bytes))
    if run.memory is not None:
        table.add_row("memory peak (memray)", _format.format_bytes(run.memory.peak_bytes))
        table.add_row("allocated per request", _format.format_bytes(run.memory.bytes_per_request))
    table.add_row("cost per 1000 predictions", _format.format_cost(run.cost.per_1000_predictions))
    table.add_row("wall time", _format.format_seconds(run.wall_s))
    table.add_row(
        "exit status", Text(str(run.exit_code), style="green" if run.exit_code == 0 else "bold red")
    )
    return table


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _stage_table(run: Run) -> Table:
    # Units sit in the headers so that the table fits 80 columns with whole stage
    # names: feature_fetch and feature_compute share a prefix, so a cut name is ambiguous.
    table = Table(title="Stages", title_justify="left", pad_edge=False)
    table.add_column("stage", no_wrap=True, min_width=15, overflow="fold")
    table.add_column("source", no_wrap=True)
    for header in ("wall s", "cpu s", "share", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(header, justify="right", no_wrap=True)

    for stage in run.stages:
        source = Text(stage.source, style="yellow" if stage.source == "auto" else "")
        table.add_row(
            _plain(stage.name),
            source,
            _number(stage.total_s, 3),
            _number(stage.cpu_s, 3),
            _format.format_share(stage.share),
            _number(stage.p50_ms, 2),
            _number(stage.p95_ms, 2),
            _number(stage.p99_ms, 2),
        )
    return table


def _children_block(children: ChildProcesses | None) -> Table | Text | None:
    """Tabulate the child processes with the most CPU time, which aitax did not profile."""
    if children is None:
        return None
    title = (
        f"Child processes, not profiled: {_format.format_seconds(children.cpu_s)} of CPU, "
        f"{_format.format_share(children.share)} of all CPU in the {children.pass_name} pass"
    )
    if not children.processes:
        line = Text(title + ".", style="yellow")
        line.append(" No child lived long enough for the process watch to see it.", style="dim")
        return line

    top_processes = children.processes[:TOP_CHILD_PROCESSES]
    caption = (
        f"{len(top_processes)} of {children.count} processes; "
        f"{children.alive_at_end} still running when the target finished."
    )
    if children.advice:
        caption += " " + children.advice
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("kind", max_width=20)
    table.add_column("command", ratio=1, overflow="fold")
    table.add_column("cpu s", justify="right", no_wrap=True)
    table.add_column("at end", no_wrap=True)
    for process in top_processes:
        table.add_row(
            _plain(process.kind),
            _plain(_shorten(process.command, MAX_SOURCE_CHARACTERS)),
            _number(process.cpu_s, 2),
            Text("running", style="yellow") if process.alive_at_end else Text("ended", style="dim"),
        )
    return table


def _findings_block(run: Run) -> Table | Text:
    ranked = _format.ranked_findings(run.findings)[:TOP_FINDINGS]
    if not ranked:
        return Text("No findings: no rule matched this run.", style="dim")

    table = Table(
        title=f"Top findings ({len(ranked)} of {len(run.findings)})", title_justify="left"
    )
    table.add_column("severity")
    table.add_column("stage")
    table.add_column("finding", ratio=1)
    table.add_column("est. saving", justify="right", max_width=24)
    for finding in ranked:
        table.add_row(
            _severity_text(finding),
            _plain(finding.stage),
            _finding_text(finding),
            _format.format_saving(finding),
        )
    return table


def _lines_block(run: Run) -> Table | None:
    """Tabulate the hottest line of the hottest line-profiled functions, or None without any."""
    measured = [profile for profile in run.lines if profile.profiled and profile.lines]
    measured.sort(key=lambda profile: -profile.total_s)
    if not measured:
        return None

    hottest_profiles = measured[:TOP_LINE_FUNCTIONS]
    unmeasured = len(run.lines) - len(measured)
    caption = None
    if unmeasured:
        noun = "function has" if unmeasured == 1 else "functions have"
        caption = f"{unmeasured} more {noun} no line timings; the HTML report says why."
    table = Table(
        title=f"Hottest lines ({len(hottest_profiles)} of {len(measured)} functions)",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    table.add_column("function", overflow="fold")
    table.add_column("line", overflow="fold")
    table.add_column("share", justify="right")
    table.add_column("time", justify="right")
    table.add_column("source", overflow="fold")
    for profile in hottest_profiles:
        hottest = _hottest_line(profile)
        table.add_row(
            _plain(profile.function),
            _plain(f"{profile.file}:{hottest.lineno}"),
            _format.format_share(hottest.share),
            _format.format_ms(hottest.time_s * 1000),
            _plain(_shorten(hottest.source.strip(), MAX_SOURCE_CHARACTERS)),
        )
    return table


def _notes_block(notes: list[str]) -> Text:
    """List every note of the run, each as one paragraph that rich wraps to the console width."""
    block = Text("Notes", style="bold")
    for note in notes:
        block.append("\n")
        # Line breaks inside a note would split its paragraph, so whitespace runs become spaces.
        block.append(_format.visible_text(" ".join(note.split())))
    return block


def _hottest_line(profile: LineProfile) -> LineTiming:
    return max(profile.lines, key=lambda timing: timing.time_s)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _severity_text(finding: Finding) -> Text:
    return Text(finding.severity, style=SEVERITY_STYLES.get(finding.severity, ""))


def _finding_text(finding: Finding) -> Text:
    text = Text(_format.visible_text(finding.title), style="bold")
    text.append("\n")
    text.append(_format.visible_text(finding.fix), style="dim")
    return text
