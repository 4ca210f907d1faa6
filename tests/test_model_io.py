"""run.json: round trips, and rejects what is not a run, with one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitax.errors import ReportLoadError
from aitax.model.io import load_run, run_from_dict, save_run
from aitax.model.run import Finding, Hotspot, StageStats
from report_fixtures import make_run

names = st.text(min_size=0, max_size=40)
numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(function=names, file=names, stage=names, evidence=names, seconds=numbers)
def test_run_json_round_trips(
    tmp_path: Path, function: str, file: str, stage: str, evidence: str, seconds: float
) -> None:
    run = make_run()
    run.hotspots = [Hotspot(1, function, file, 3, stage, seconds, seconds, 0.5, True)]
    run.stages = [StageStats(stage, seconds, 0.2, None, None, None, None, None, "auto")]
    run.findings = (
        [replace(run.findings[0], evidence=evidence, stage=stage)]
        if run.findings
        else [Finding("r", "cache", stage, "low", "t", evidence, 1.0, "b", "f")]
    )
    path = tmp_path / "run.json"
    save_run(run, path)

    loaded = load_run(path)
    assert loaded.hotspots[0].function == function
    assert loaded.hotspots[0].file == file
    assert loaded.stages[0].name == stage
    assert loaded.findings[0].evidence == evidence
    if seconds == seconds and abs(seconds) != float("inf"):
        assert loaded.hotspots[0].self_s == seconds
    else:
        assert loaded.hotspots[0].self_s is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_rejected_cleanly(data: object) -> None:
    try:
        run_from_dict(data)
    except ReportLoadError as error:
        assert "\n" not in str(error)


def test_wrong_schema_version_names_both_versions() -> None:
    data = make_run().to_json_dict()
    data["schema_version"] = 99
    with pytest.raises(ReportLoadError, match="schema_version 99"):
        run_from_dict(data)


def test_missing_field_is_invalid() -> None:
    data = make_run().to_json_dict()
    del data["requests"]["p50_ms"]
    with pytest.raises(ReportLoadError, match="is invalid"):
        run_from_dict(data)


def test_truncated_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_run(make_run(), path)
    path.write_text(path.read_text()[:100])
    with pytest.raises(ReportLoadError, match="is unreadable"):
        load_run(path)


def test_saved_file_is_json_without_nan(tmp_path: Path) -> None:
    run = make_run()
    run.wall_s = float("nan")
    save_run(run, tmp_path / "run.json")
    text = (tmp_path / "run.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["wall_s"] is None
