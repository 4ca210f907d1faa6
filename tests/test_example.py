"""The bundled scoring example: the report names its planted problems, and the twin is clean.

The estimated saving of each finding on the naive service must be within a factor
of 2 of the saving measured by running the optimized twin: the drop in that
finding's stage time between the two runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from browser_helpers import screenshot
from conftest import run_aitax

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "scoring"
REQUESTS = "200"
PLANTED = {"batch", "vectorize", "cache", "logging"}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scoring-build")
    subprocess.run(
        [sys.executable, str(EXAMPLE / "prepare.py"), "--build-dir", str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


def profile(script: str, build_dir: Path, out: Path) -> dict:  # type: ignore[type-arg]
    result = run_aitax(
        "run", "-q", "--passes", "clean,cpu", "-o", str(out),
        str(EXAMPLE / script), "--requests", REQUESTS, "--build-dir", str(build_dir),
        cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads((out / "run.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def naive_dir(build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("naive") / "rep"
    profile("service.py", build_dir, folder)
    return folder


@pytest.fixture(scope="module")
def naive(naive_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((naive_dir / "run.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def optimized(build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    return profile("service_optimized.py", build_dir, tmp_path_factory.mktemp("optimized") / "rep")


def stage_seconds(run: dict) -> dict[str, float]:  # type: ignore[type-arg]
    totals: dict[str, float] = {}
    for stage in run["stages"]:
        totals[stage["name"]] = totals.get(stage["name"], 0.0) + stage["total_s"]
    return totals


def test_top_findings_are_planted_problems(naive: dict) -> None:  # type: ignore[type-arg]
    top = [finding["category"] for finding in naive["findings"][:3]]
    assert len(top) == 3
    assert set(top) <= PLANTED
    assert {finding["category"] for finding in naive["findings"]} >= PLANTED


def test_optimized_twin_has_no_high_findings(optimized: dict) -> None:  # type: ignore[type-arg]
    assert [f["title"] for f in optimized["findings"] if f["severity"] == "high"] == []
    assert optimized["requests"]["items"] == int(REQUESTS)


def test_estimates_within_factor_two_of_measured(naive: dict, optimized: dict) -> None:  # type: ignore[type-arg]
    before, after = stage_seconds(naive), stage_seconds(optimized)
    for finding in naive["findings"]:
        if finding["category"] not in PLANTED:
            continue
        measured = before[finding["stage"]] - after.get(finding["stage"], 0.0)
        estimated = finding["estimated_saving_ms"] / 1000
        assert measured / 2 <= estimated <= measured * 2, (finding["category"], estimated, measured)


def test_row_loop_finding_names_the_function(naive: dict) -> None:  # type: ignore[type-arg]
    vectorize = next(f for f in naive["findings"] if f["category"] == "vectorize")
    assert "compute_features_rowwise" in vectorize["title"]
    assert any("feature_engineering.py" in location for location in vectorize["locations"])


def test_example_report_loads_cleanly_in_chromium(naive_dir: Path, tmp_path: Path) -> None:
    page = naive_dir / "report.html"
    assert page.stat().st_size < 2_000_000

    events = screenshot(page, tmp_path / "report.png", width=1280, height=1000)
    assert events.console_errors == []
    assert events.page_errors == []
    assert events.external_requests == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
