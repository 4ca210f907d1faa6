"""`aitax check` on runs whose target failed or that measured nothing, and CLI error paths.

The runs are built by hand and saved as run.json, so each case states the
exact exit status and pass results that it checks.
"""

from __future__ import annotations

import json
import logging
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from aitax.analysis.slo import check_run, parse_objective
from aitax.cli.main import main
from aitax.errors import EXIT_BAD_REPORT, EXIT_OUTPUT_UNWRITABLE, EXIT_USAGE
from aitax.model.io import RUN_FILE, save_run
from aitax.model.run import PassResult, Run
from conftest import CommandResult, run_aitax
from report_fixtures import make_run

DEEPLY_NESTED_JSON = "[" * 100_000 + "]" * 100_000


def _save(folder: Path, run: Run) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_run(run, folder / RUN_FILE)
    return folder


def _lost_capture_run() -> Run:
    """A run like one whose target called os._exit(9): every capture lost, wall time 0."""
    passes = [
        PassResult(name="clean", status="failed", exit_code=9, error="the capture is missing"),
        PassResult(name="cpu", status="failed", exit_code=9, error="the capture is missing"),
    ]
    return make_run(exit_code=9, wall_s=0.0, cpu_s=0.0, passes=passes, partial=False)


def _check_json(folder: Path, *options: str) -> tuple[CommandResult, dict[str, Any]]:
    result = run_aitax("check", "--json", str(folder), *options, cwd=folder)
    document: dict[str, Any] = json.loads(result.stdout)
    return result, document


# aitax check on failed runs


def test_lost_captures_fail_wall_time_slo(tmp_path: Path) -> None:
    folder = _save(tmp_path / "lost", _lost_capture_run())

    result, document = _check_json(folder, "--slo", "wall_s<=10")

    assert result.returncode == 1, result.stderr
    assert document["passed"] is False
    assert "the target exited with status 9" in document["run_failures"]
    assert any("clean (timing) pass failed" in item for item in document["run_failures"])
    assert "Failed run: the target exited with status 9" in result.stderr
    assert "PASS" not in result.stderr
    assert "FAIL" in result.stderr


def test_target_exit_status_fails_check(tmp_path: Path) -> None:
    folder = _save(tmp_path / "exit1", make_run(exit_code=1))

    result, document = _check_json(folder, "--slo", "p99_ms<=1000")

    assert result.returncode == 1, result.stderr
    assert document["run_failures"] == ["the target exited with status 1"]
    assert [item["status"] for item in document["objectives"]] == ["pass"]
    assert "exited with status 1" in result.stderr


def test_allow_failed_run_checks_objectives(tmp_path: Path) -> None:
    folder = _save(tmp_path / "exit1", make_run(exit_code=1))

    result, document = _check_json(folder, "--slo", "p99_ms<=1000", "--allow-failed-run")

    assert result.returncode == 0, result.stderr
    assert document["passed"] is True
    assert document["allow_failed_run"] is True
    assert document["run_failures"] == ["the target exited with status 1"]
    assert "--allow-failed-run was given" in result.stderr


def test_missing_timing_pass_fails_timing_slo() -> None:
    run = make_run(passes=[PassResult(name="memory", status="ok")])

    result = check_run(run, [parse_objective("p99_ms<=1000")], allow_missing=False)

    assert result.run_failures == ["the clean (timing) pass did not run"]
    assert not result.passed


def test_failed_timing_pass_ignored_for_memory_slo() -> None:
    passes = [
        PassResult(name="clean", status="failed", error="killed"),
        PassResult(name="memory", status="ok"),
    ]
    run = make_run(passes=passes)

    result = check_run(run, [parse_objective("memory_peak_mb<=100000")], allow_missing=False)

    assert result.run_failures == []
    assert result.passed


def test_baseline_with_failed_timing_pass_fails() -> None:
    baseline = make_run(passes=[PassResult(name="clean", status="failed", error="killed")])

    result = check_run(make_run(), [], allow_missing=False, baseline=baseline)

    assert result.run_failures == ["in the baseline, the clean (timing) pass failed: killed"]
    assert not result.passed


def test_all_skipped_objectives_not_reported_met(tmp_path: Path) -> None:
    folder = _save(tmp_path / "ok", make_run())

    result, document = _check_json(
        folder, "--slo", "stage.missing_stage.p95_ms<=5", "--allow-missing"
    )

    assert result.returncode == 0, result.stderr
    assert [item["status"] for item in document["objectives"]] == ["skipped"]
    assert "objectives met" not in result.stderr
    assert "no objective was checked" in result.stderr


# Loading and writing errors through the real console script


@pytest.mark.parametrize("command", ["check", "report"])
def test_deeply_nested_run_json_is_invalid(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / RUN_FILE).write_text(DEEPLY_NESTED_JSON, encoding="utf-8")
    options = ["--slo", "wall_s<=10"] if command == "check" else []

    result = run_aitax(command, str(folder), *options, cwd=tmp_path)

    assert result.returncode == EXIT_BAD_REPORT, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("aitax: error: ")
    assert "nested too deeply" in result.stderr


def test_report_into_missing_folder_is_one_line(tmp_path: Path) -> None:
    folder = _save(tmp_path / "run", make_run())
    target = tmp_path / "missing_dir" / "x" / "rep.html"

    result = run_aitax("report", "-o", str(target), str(folder), cwd=tmp_path)

    assert result.returncode == EXIT_OUTPUT_UNWRITABLE, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "does not exist" in result.stderr


def test_report_onto_folder_is_one_line(tmp_path: Path) -> None:
    folder = _save(tmp_path / "run", make_run())
    existing = tmp_path / "existing"
    existing.mkdir()

    result = run_aitax("report", "--force", "-o", str(existing), str(folder), cwd=tmp_path)

    assert result.returncode == EXIT_OUTPUT_UNWRITABLE, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "is a folder" in result.stderr


# Argument errors and logging


def test_top_level_usage_error_names_aitax_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["-c"])

    assert stopped.value.code == EXIT_USAGE
    error = capsys.readouterr().err
    assert "see aitax --help" in error
    assert "aitax aitax" not in error


def test_subcommand_usage_error_names_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check"])

    assert "see aitax check --help" in capsys.readouterr().err


def test_logging_follows_replaced_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _save(tmp_path / "run", make_run(exit_code=1))
    closed = StringIO()
    monkeypatch.setattr(sys, "stderr", closed)
    main(["check", "-q", str(folder), "--slo", "wall_s<=1000"])
    closed.close()

    current = StringIO()
    monkeypatch.setattr(sys, "stderr", current)
    logging.getLogger("aitax.test").error("written after stderr was replaced")

    assert "written after stderr was replaced" in current.getvalue()


def test_partial_run_exit_status_is_not_a_failure() -> None:
    # aitax's --timeout stop makes the target exit with 143; the check flags the run as partial.
    run = make_run(exit_code=143, partial=True, stop_reason="stopped at the --timeout limit")

    result = check_run(run, [parse_objective("p99_ms<=1000")], allow_missing=False)

    assert result.run_failures == []
    assert result.passed
