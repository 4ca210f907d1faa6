"""The benchmark script in its quickest mode: it runs end to end and writes every table.

Benchmarks are not tests, so nothing here checks a timing; this only checks that
benchmarks/run.py still works against the current aitax and writes its page.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_SCRIPT = REPO_ROOT / "benchmarks" / "run.py"
# The quickest run: one tiny pipeline and one run per command. The other profilers are
# left out to keep the test near a minute; Scalene alone adds about ten seconds.
SMOKE_ARGS = ["--quick", "--runs", "1", "--pipelines", "call_heavy", "--skip", "profilers"]
TIMEOUT_S = 300

SECTION_HEADINGS = (
    "# Benchmarks",
    "## Targets",
    "## Machine and software",
    "## Method",
    "## aitax overhead",
    "## Other profilers",
    "## Stage attribution accuracy",
    "## Monitor-mode cost",
    "## Report cost",
    "## Failures and missing tools",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("benchmarks") / "benchmarks.md"
    completed = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), *SMOKE_ARGS, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert out.is_file(), f"run.py exited 0 but wrote no {out}"
    return out.read_text(encoding="utf-8")


def table_rows(page: str, first_cell: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith(f"| {first_cell}")]


def test_page_has_every_section(page: str) -> None:
    headings = {line for line in page.splitlines() if line.startswith("#")}
    for heading in SECTION_HEADINGS:
        assert heading in headings, f"missing heading {heading!r}"


def test_page_says_quick_mode_measures_nothing(page: str) -> None:
    assert "Quick mode" in page


def test_targets_table_lists_each_target(page: str) -> None:
    assert "| Target | Limit | Measured (median) | Verdict |" in page
    assert table_rows(page, "CPU pass on the call-heavy pipeline")
    assert table_rows(page, "Stage enter/exit pair, no recorder")


def test_overhead_table_has_call_heavy_ratios(page: str) -> None:
    header = table_rows(page, "Command |")
    assert header and "call-heavy" in header[0]

    bare = table_rows(page, "bare `python SCRIPT`")
    assert bare and re.search(r"\| \d+\.\d\d s \|", bare[0]), bare

    whole = table_rows(page, "all passes: whole `aitax run`")
    assert whole and re.search(r"\| \d+\.\d\dx", whole[0]), whole

    cpu_pass = table_rows(page, "`--passes cpu`: cpu pass process")
    assert cpu_pass and re.search(r"\| \d+\.\d\dx", cpu_pass[0]), cpu_pass


def test_skipped_families_are_reported(page: str) -> None:
    profilers = page.split("## Other profilers", 1)[1].split("\n## ", 1)[0]
    assert "Not measured in this run." in profilers

    accuracy = page.split("## Stage attribution accuracy", 1)[1].split("\n## ", 1)[0]
    assert "Skipped: the example pipeline was not selected" in accuracy


def test_monitor_table_has_costs(page: str) -> None:
    assert "| Implementation | with block, ns per enter/exit pair |" in page
    row = table_rows(page, "aitax.stage, no recorder")
    assert row and re.search(r"\| -?[\d,]+ \|", row[0]), row


def test_report_cost_tables_and_fits(page: str) -> None:
    assert "### Run length" in page
    assert "### Number of functions" in page
    assert page.count("| Functions (N) | Calls each (M) |") == 2
    assert page.count("Growth: analysis and report time grows as") == 2
