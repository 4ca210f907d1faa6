"""The io_wait rule on a fetch stage that sleeps like a remote call, and on its local twin."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import profile_source

REMOTE_FETCH = """
import time
import aitax

store = {key: [key * 0.5] * 8 for key in range(60)}

def fetch(key):
    time.sleep(0.004)  # a round trip to a remote feature store
    return store[key]

for key in range(60):
    with aitax.request():
        with aitax.stage("feature_fetch"):
            features = fetch(key)
        with aitax.stage("feature_compute"):
            total = sum(value * value for value in features * 200)
"""
# The fix moves the data closer: the features are read from local memory.
LOCAL_FETCH = REMOTE_FETCH.replace("time.sleep(0.004)", "pass")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), REMOTE_FETCH),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), LOCAL_FETCH),
    }


def stage_total_s(run: dict[str, Any], name: str) -> float:
    return sum(stage["total_s"] for stage in run["stages"] if stage["name"] == name)


def test_waiting_stage_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert "io_wait" in [finding["category"] for finding in findings[:3]]
    finding = next(f for f in findings if f["category"] == "io_wait")
    assert finding["stage"] == "feature_fetch"
    assert "sleep()" in finding["evidence"]
    assert finding["severity"] == "high"


def test_local_twin_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert "io_wait" not in [finding["category"] for finding in runs["fixed"]["findings"]]


def test_estimate_matches_measured_saving(runs: dict[str, dict[str, Any]]) -> None:
    """The estimate must fall within 25 % of the fetch time that the local twin saved."""
    finding = next(f for f in runs["planted"]["findings"] if f["category"] == "io_wait")
    measured_ms = 1000 * (
        stage_total_s(runs["planted"], "feature_fetch")
        - stage_total_s(runs["fixed"], "feature_fetch")
    )
    assert measured_ms > 0
    assert finding["estimated_saving_ms"] == pytest.approx(measured_ms, rel=0.25)
