"""The terminal summary: run numbers, stages, hot lines and findings, colored only on terminals."""

from __future__ import annotations

import dataclasses
import io
import re
import uuid

import pytest
from rich.console import Console

from aitax.model.run import RequestStats, Run
from aitax.report import print_summary
from report_fixtures import make_findings, make_hostile_run, make_run

ANSI_ESCAPE = re.compile(r"\x1b\[([0-9;]*)m")

# SGR parameters that set a color: 30-37 and 90-97 foreground, 40-47 and 100-107
# background, 38 and 48 for 256-color and truecolor.
COLOR_PARAMETERS = re.compile(r"(^|;)(3[0-8]|4[0-8]|9[0-7]|10[0-7])(;|$)")


def recorded_summary(run: Run) -> str:
    console = Console(record=True, width=120, no_color=True, file=io.StringIO())
    print_summary(run, console)
    return console.export_text()


def terminal_output(run: Run) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system="standard")
    print_summary(run, console)
    return buffer.getvalue()


def color_codes(output: str) -> list[str]:
    return [
        parameters
        for parameters in ANSI_ESCAPE.findall(output)
        if COLOR_PARAMETERS.search(parameters)
    ]


def test_summary_lists_stages() -> None:
    text = recorded_summary(make_run())

    for name in (
        "feature_fetch",
        "feature_compute",
        "inference",
        "logging",
        "json_decode",
        "other",
    ):
        assert name in text
    assert re.search(r"json_decode\s+│\s+auto", text)


def test_summary_shows_kpis() -> None:
    text = recorded_summary(make_run())

    for value in (
        "27.1 ms / 48.9 ms / 63.4 ms",
        "33.3 req/s",
        "267 items/s",
        "812.0 MiB",
        "$0.0028",
        "12.0 s",
        "400 (3,200 items)",
    ):
        assert value in text


def test_summary_shows_top_findings_in_order() -> None:
    text = recorded_summary(make_run())

    high, medium = (finding.title for finding in make_findings())
    assert high in text
    assert medium in text
    assert text.index(high) < text.index(medium)
    assert "9.60 ms per request" in text
    assert "(32.0% of wall time)" in text


def test_summary_shows_at_most_three_findings() -> None:
    findings = [
        dataclasses.replace(
            make_findings()[1], title=f"Finding number {index}", estimated_saving_ms=float(index)
        )
        for index in range(5)
    ]

    text = recorded_summary(make_run(findings=findings))

    assert "Top findings (3 of 5)" in text
    assert "Finding number 4" in text
    assert "Finding number 1" not in text


def test_summary_without_findings_says_so() -> None:
    text = recorded_summary(make_run(findings=[]))

    assert "No findings" in text


def test_summary_without_requests_explains_marking() -> None:
    requests = RequestStats(
        count=0,
        items=0,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        mean_ms=None,
        max_ms=None,
        throughput_rps=None,
        throughput_items_per_s=None,
    )

    text = recorded_summary(make_run(requests=requests))

    assert "with aitax.request():" in text


def test_failed_target_shows_last_traceback_line() -> None:
    run = make_run(exit_code=1, traceback="Traceback (most recent call last):\nKeyError: 'user'")

    text = recorded_summary(run)

    assert "The target exited with status 1." in text
    assert "KeyError: 'user'" in text


def test_non_terminal_output_has_no_ansi() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)

    print_summary(make_run(), console)

    assert "\x1b" not in buffer.getvalue()
    assert "feature_fetch" in buffer.getvalue()


def test_no_color_drops_colors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    output = terminal_output(make_run())

    assert color_codes(output) == []


def test_terminal_colors_severity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)

    output = terminal_output(make_run())

    assert "\x1b[1;31mhigh" in output
    assert "\x1b[33mmedium" in output


def test_low_severity_is_dim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    low = dataclasses.replace(make_findings()[1], severity="low")

    output = terminal_output(make_run(findings=[low]))

    assert "\x1b[2mlow" in output


def test_hostile_names_print_literally() -> None:
    run = make_hostile_run()
    stages = [*run.stages, dataclasses.replace(run.stages[0], name="[bold]markup[/bold]")]

    text = recorded_summary(dataclasses.replace(run, stages=stages))

    assert "[bold]markup[/bold]" in text
    assert "\\x1b[31m" in text
    assert "\x1b" not in text
    assert "\x00" not in text


def test_environment_variables_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AITAX_REPORT_TEST_SECRET", secret)

    text = recorded_summary(make_run())

    assert secret not in text


def test_summary_saving_without_requests_is_over_run() -> None:
    finding = dataclasses.replace(make_findings()[0], saving_per_request_ms=None)

    text = recorded_summary(make_run(findings=[finding]))

    assert "3.84 s over the run" in text
    assert "ms per request" not in text


def test_summary_shows_partial_run_first() -> None:
    run = make_run(partial=True, stop_reason="stopped at the --timeout limit")

    text = recorded_summary(run)

    assert "Partial run: stopped at the --timeout limit." in text
    assert text.index("Partial run") < text.index("requests")


def test_summary_shows_memory_peak() -> None:
    text = recorded_summary(make_run())

    assert re.search(r"memory peak \(memray\)\s+412.0 MiB", text)
    assert re.search(r"allocated per request\s+21.2 MiB", text)


def test_summary_without_memory_omits_memory_rows() -> None:
    text = recorded_summary(make_run(memory=None))

    assert "memray" not in text


def test_summary_shows_hottest_lines() -> None:
    text = recorded_summary(make_run())

    assert "Hottest lines (3 of 3 functions)" in text
    assert re.search(r"fetch_user_features\s+│\s+pipeline/features.py:45\s+│\s+82.3%", text)
    assert "row = store.get(key)" in text
    assert "2 more functions have no line timings" in text


def test_summary_without_line_profiles_has_no_lines_table() -> None:
    text = recorded_summary(make_run(lines=[]))

    assert "Hottest lines" not in text
