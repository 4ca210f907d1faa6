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

from aitax.model.run import Finding, Run, Severity
from aitax.report import _format

logger = logging.getLogger(__name__)

TOP_FINDINGS: Final = 3

SEVERITY_STYLES: Final[dict[Severity, str]] = {
    "high": "bold red",
    "medium": "yellow",
    "low": "dim",
}


def print_summary(run: Run, console: Console) -> None:
    """Print the headline numbers, the stage table and the top findings of `run`."""
    console.print(_title(run))
    if run.exit_code != 0:
        console.print(_failure_line(run))

    console.print(_kpi_table(run))
    console.print(_stage_table(run))
    console.print(_findings_block(run))
    logger.debug("Printed terminal summary of %s", run.target)


def _plain(text: str) -> Text:
    return Text(_format.visible_text(text))


def _title(run: Run) -> Text:
    title = Text("aitax ", style="bold")
    title.append(_format.visible_text(run.target), style="bold")
    title.append(f"  started {_format.visible_text(run.started_at)}", style="dim")
    return title


def _failure_line(run: Run) -> Text:
    line = Text(f"The target exited with status {run.exit_code}.", style="bold red")
    if run.traceback:
        last_line = run.traceback.strip().splitlines()[-1]
        line.append(" ")
        line.append(_format.visible_text(last_line), style="red")
    return line


def _kpi_table(run: Run) -> Table:
    requests = run.requests
    table = Table(title="Run", title_justify="left", show_header=False, box=None,
                  padding=(0, 2, 0, 0))
    table.add_column("metric", style="dim")
    table.add_column("value", justify="right")

    if requests.count == 0:
        table.add_row("requests", "none marked: wrap each prediction in `with aitax.request():`")
    else:
        table.add_row("requests", f"{requests.count:,} ({requests.items:,} items)")
    table.add_row("latency p50 / p95 / p99", " / ".join(
        _format.format_ms(value) for value in (requests.p50_ms, requests.p95_ms, requests.p99_ms)
    ))
    table.add_row("throughput", f"{_format.format_rate(requests.throughput_rps, 'req/s')}, "
                  f"{_format.format_rate(requests.throughput_items_per_s, 'items/s')}")
    table.add_row("peak RSS", _format.format_bytes(run.peak_rss_bytes))
    table.add_row("cost per 1000 predictions", _format.format_cost(run.cost.per_1000_predictions))
    table.add_row("wall time", _format.format_seconds(run.wall_s))
    table.add_row("exit status", Text(str(run.exit_code),
                                      style="green" if run.exit_code == 0 else "bold red"))
    return table


def _stage_table(run: Run) -> Table:
    table = Table(title="Stages", title_justify="left")
    table.add_column("stage")
    table.add_column("source")
    for header in ("wall", "cpu", "share", "p50", "p95", "p99"):
        table.add_column(header, justify="right")

    for stage in run.stages:
        source = Text(stage.source, style="yellow" if stage.source == "auto" else "")
        table.add_row(
            _plain(stage.name),
            source,
            _format.format_seconds(stage.total_s),
            _format.format_seconds(stage.cpu_s),
            _format.format_share(stage.share),
            _format.format_ms(stage.p50_ms),
            _format.format_ms(stage.p95_ms),
            _format.format_ms(stage.p99_ms),
        )
    return table


def _findings_block(run: Run) -> Table | Text:
    ranked = _format.ranked_findings(run.findings)[:TOP_FINDINGS]
    if not ranked:
        return Text("No findings: no rule matched this run.", style="dim")

    table = Table(title=f"Top findings ({len(ranked)} of {len(run.findings)})",
                  title_justify="left")
    table.add_column("severity")
    table.add_column("stage")
    table.add_column("finding", ratio=1)
    table.add_column("est. saving", justify="right")
    for finding in ranked:
        table.add_row(_severity_text(finding), _plain(finding.stage), _finding_text(finding),
                      _format.format_ms(finding.estimated_saving_ms))
    return table


def _severity_text(finding: Finding) -> Text:
    return Text(finding.severity, style=SEVERITY_STYLES.get(finding.severity, ""))


def _finding_text(finding: Finding) -> Text:
    text = Text(_format.visible_text(finding.title), style="bold")
    text.append("\n")
    text.append(_format.visible_text(finding.fix), style="dim")
    return text
