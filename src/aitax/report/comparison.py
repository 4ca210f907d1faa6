"""Terminal tables and JSON documents for `aitax compare` and `aitax check`.

As in the run summary, every name from the profiled program is passed to rich
as `Text`, never as markup.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from aitax.analysis.compare import Comparison, MetricChange, Verdict
from aitax.analysis.metrics import Metric
from aitax.analysis.slo import CheckResult, ObjectiveResult, Status
from aitax.report import _format

logger = logging.getLogger(__name__)

VERDICT_STYLES: Final[dict[Verdict, str]] = {
    "regression": "bold red",
    "improvement": "green",
    "within noise": "dim",
    "not compared": "yellow",
}
STATUS_STYLES: Final[dict[Status, str]] = {
    "pass": "green",
    "fail": "bold red",
    "missing": "bold red",
    "skipped": "yellow",
}
THRESHOLD_ONLY: Final = "threshold only"
# Terminal width from which each comparison row fits on one line.
WIDE_TABLE: Final = 110


# Values


def format_value(metric: Metric, value: float | None) -> str:
    """Format a metric's value in its unit."""
    if value is None:
        return _format.MISSING
    if metric.unit == "ms":
        # Stage calls often take microseconds, where two decimals of ms hide the change.
        return _format.format_us(value * 1000) if abs(value) < 1 else _format.format_ms(value)
    if metric.unit == "s":
        return _format.format_seconds(value)
    if metric.unit == "$":
        return _format.format_cost(value)
    if metric.unit == "MiB":
        return f"{value:,.1f} MiB"
    return _format.format_rate(value, metric.unit)


def format_signed(metric: Metric, value: float) -> str:
    """Format a change with its sign, such as +1.20 ms or -3.1 req/s."""
    sign = "-" if value < 0 else "+"
    return sign + format_value(metric, abs(value))


def _change_text(change: MetricChange, separator: str) -> str:
    if change.change is None:
        return _format.MISSING
    absolute = format_signed(change.metric, change.change)
    if change.change_pct is None:
        return f"{absolute}{separator}from zero"
    if separator == " ":
        absolute = f"({absolute})"
    return f"{change.change_pct:+.1f}%{separator}{absolute}"


def _interval_text(change: MetricChange, separator: str) -> Text:
    if change.interval is not None:
        low = format_signed(change.metric, change.interval.low)
        high = format_signed(change.metric, change.interval.high)
        low_number, _, low_unit = low.partition(" ")
        if low_unit and high.endswith(" " + low_unit):
            low = low_number
        return Text(f"{low} to{separator}{high}")
    if change.verdict == "not compared":
        return Text(_format.MISSING)
    return Text(THRESHOLD_ONLY.replace(" ", separator), style="dim")


# Tables


def comparison_table(
    changes: list[MetricChange], comparison: Comparison, title: str, width: int
) -> Table:
    """Tabulate metric changes with their interval and verdict, to fit `width` columns.

    Below WIDE_TABLE columns, such as the 80 that rich assumes when the output
    is not a terminal, the change and interval cells take two lines each.
    """
    separator = " " if width >= WIDE_TABLE else "\n"
    confidence = comparison.settings.bootstrap.confidence * 100
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    # Only the metric column may wrap: rich shrinks several wrapping columns to
    # one width and then cuts the rest, the verdict included.
    table.add_column("metric", overflow="fold")
    for header in ("baseline", "current", "change", f"{confidence:g}% CI"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)

    for change in changes:
        table.add_row(
            Text(_format.visible_text(change.metric.label)),
            format_value(change.metric, change.baseline),
            format_value(change.metric, change.current),
            _change_text(change, separator),
            _interval_text(change, separator),
            Text(change.verdict, style=VERDICT_STYLES[change.verdict]),
        )
    return table


def _rule_text(comparison: Comparison) -> Text:
    settings = comparison.settings
    confidence = settings.bootstrap.confidence * 100
    return Text(
        f"A change counts when it exceeds {settings.threshold_pct:g}% and, for metrics with "
        f"per-request or per-call samples, its {confidence:g}% bootstrap confidence interval "
        f"(CI, {settings.bootstrap.resamples} resamples) excludes zero. Rows marked "
        f"'{THRESHOLD_ONLY}' have one value per run, so the threshold alone decides.",
        style="dim",
    )


def _notes(changes: list[MetricChange]) -> list[Text]:
    """List the reasons for rows that were not compared or had too few samples to bootstrap.

    Rows with the same reason, such as every latency of a run without requests,
    share one line.
    """
    labels_by_note: dict[str, list[str]] = {}
    for change in changes:
        if change.note is None or change.note.startswith("threshold only: one value"):
            continue
        labels_by_note.setdefault(change.note, []).append(change.metric.label)

    lines = []
    for note, labels in labels_by_note.items():
        line = Text(_format.visible_text(", ".join(labels)) + ": ", style="dim")
        line.append(_format.visible_text(note), style="dim")
        lines.append(line)
    return lines


def _counts_text(comparison: Comparison) -> str:
    counts = []
    for verdict in ("regression", "improvement", "within noise", "not compared"):
        count = len(comparison.with_verdict(verdict))
        if count:
            plural = "s" if count != 1 and verdict in ("regression", "improvement") else ""
            counts.append(f"{count} {verdict}{plural}")
    return ", ".join(counts) or "no metrics in common"


def print_comparison(
    comparison: Comparison, console: Console, baseline: Path, current: Path
) -> None:
    """Print the metric table of `aitax compare`, its rule, notes and counts."""
    title = f"Comparison of {_format.visible_text(str(current))} with baseline "
    title += _format.visible_text(str(baseline))
    console.print(comparison_table(comparison.changes, comparison, title, console.width))
    console.print(_rule_text(comparison))
    for line in _notes(comparison.changes):
        console.print(line)
    console.print(Text(_counts_text(comparison) + ".", style="bold"))
    logger.debug("printed the comparison of %s with %s", current, baseline)


def _objective_table(results: list[ObjectiveResult]) -> Table:
    table = Table(
        title="Objectives",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("objective", overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)

    for result in results:
        objective = result.objective
        name = Text(_format.visible_text(objective.expression))
        if result.message:
            name.append("\n" + _format.visible_text(result.message), style="dim")
        source = objective.source if objective.source == "--slo" else Path(objective.source).name
        table.add_row(
            name,
            Text(_format.visible_text(source)),
            format_value(objective.metric, result.value),
            f"{objective.operator} {format_value(objective.metric, objective.limit)}",
            Text(result.status, style=STATUS_STYLES[result.status]),
        )
    return table


def print_check(result: CheckResult, console: Console, run: Path) -> None:
    """Print the objectives, the regressions against the baseline and the outcome of `aitax check`."""
    console.print(Text(f"Check of {_format.visible_text(str(run))}", style="bold"))
    if result.partial:
        reason = _format.visible_text(result.stop_reason or "stopped before it finished")
        console.print(
            Text(
                f"Partial run: {reason}. The values cover what was measured until the stop.",
                style="bold yellow",
            )
        )
    for failure in result.run_failures:
        console.print(_run_failure_text(failure, result.allow_failed_run))
    if result.objectives:
        console.print(_objective_table(result.objectives))
    if result.comparison is not None:
        _print_regressions(result.comparison, console)
    console.print(_outcome_text(result))


def _run_failure_text(failure: str, allowed: bool) -> Text:
    reason = _format.visible_text(failure)
    if allowed:
        return Text(
            f"Failed run: {reason}. --allow-failed-run was given, so the check goes on.",
            style="bold yellow",
        )
    return Text(
        f"Failed run: {reason}, so its measurements cannot pass a check. "
        "Fix the target, or pass --allow-failed-run to check it anyway.",
        style="bold red",
    )


def _print_regressions(comparison: Comparison, console: Console) -> None:
    regressions = comparison.with_verdict("regression")
    threshold = comparison.settings.threshold_pct
    if not regressions:
        console.print(
            Text(f"No significant regression against the baseline (threshold {threshold:g}%).")
        )
        return
    title = f"Significant regressions against the baseline (threshold {threshold:g}%)"
    console.print(comparison_table(regressions, comparison, title, console.width))
    console.print(_rule_text(comparison))


def _outcome_text(result: CheckResult) -> Text:
    failed = len(result.failed_objectives)
    checked = len(result.checked_objectives)
    skipped = len(result.objectives) - checked
    parts = []
    if result.run_failures and not result.allow_failed_run:
        parts.append("the run failed")
    if checked:
        parts.append(f"{checked - failed} of {checked} objectives met")
    elif skipped:
        parts.append("no objective was checked")
    if skipped:
        parts.append(f"{skipped} skipped for a missing metric")
    if result.comparison is not None:
        count = len(result.comparison.with_verdict("regression"))
        parts.append(f"{count} significant regression{'s' if count != 1 else ''}")
    if result.passed:
        return Text("PASS: " + ", ".join(parts) + ".", style="bold green")
    return Text("FAIL: " + ", ".join(parts) + ".", style="bold red")


# JSON


def change_json(change: MetricChange) -> dict[str, Any]:
    """Describe one metric change with plain JSON values."""
    interval = change.interval
    return {
        "metric": change.metric.key,
        "label": change.metric.label,
        "unit": change.metric.unit,
        "better": change.metric.better,
        "baseline": change.baseline,
        "current": change.current,
        "change": change.change,
        "change_pct": change.change_pct,
        "interval": None if interval is None else [interval.low, interval.high],
        "basis": change.basis,
        "verdict": change.verdict,
        "note": change.note,
        "samples": {"baseline": change.samples[0], "current": change.samples[1]},
    }


def comparison_json(comparison: Comparison, baseline: Path, current: Path) -> dict[str, Any]:
    """Describe a comparison as the document that `aitax compare --json` prints."""
    settings = comparison.settings
    return {
        "baseline": str(baseline),
        "current": str(current),
        "threshold_pct": settings.threshold_pct,
        "confidence": settings.bootstrap.confidence,
        "resamples": settings.bootstrap.resamples,
        "seed": settings.bootstrap.seed,
        "differences": [asdict(difference) for difference in comparison.differences],
        "regressions": len(comparison.with_verdict("regression")),
        "improvements": len(comparison.with_verdict("improvement")),
        "metrics": [change_json(change) for change in comparison.changes],
    }


def _objective_json(result: ObjectiveResult) -> dict[str, Any]:
    objective = result.objective
    return {
        "objective": objective.expression,
        "metric": objective.metric.key,
        "operator": objective.operator,
        "limit": objective.limit,
        "source": objective.source,
        "value": result.value,
        "status": result.status,
        "message": result.message,
    }


def check_json(result: CheckResult, run: Path, baseline: Path | None) -> dict[str, Any]:
    """Describe a check as the document that `aitax check --json` prints."""
    comparison = None
    if result.comparison is not None and baseline is not None:
        comparison = comparison_json(result.comparison, baseline, run)
    return {
        "run": str(run),
        "passed": result.passed,
        "partial": result.partial,
        "stop_reason": result.stop_reason,
        "run_failures": result.run_failures,
        "allow_failed_run": result.allow_failed_run,
        "objectives": [_objective_json(item) for item in result.objectives],
        "comparison": comparison,
    }
