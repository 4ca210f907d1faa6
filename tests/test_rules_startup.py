"""The start-up rule on a process that loads a model to serve three requests, and on a warm one."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import profile_source

PROCESS_PER_BATCH = """
import pickle
import time

import aitax

stored_model = pickle.dumps({f"sku_{i}": [i * 0.5] * 30 for i in range(30000)})

catalog = pickle.loads(stored_model)  # loading the model, as every new process does
time.sleep(0.15)  # connecting to the feature store

for request in range(3):
    with aitax.request():
        with aitax.stage("inference"):
            score = sum(catalog[f"sku_{i}"][0] for i in range(2000))
"""
# The fix keeps the process warm: the same start-up, then many requests.
WARM_PROCESS = PROCESS_PER_BATCH.replace("range(3)", "range(300)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), PROCESS_PER_BATCH),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), WARM_PROCESS),
    }


def startup_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "startup"]


def test_short_lived_process_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert "startup" in [finding["category"] for finding in findings[:3]]
    finding = startup_findings(runs["planted"])[0]
    assert "served 3 requests" in finding["evidence"]
    assert finding["severity"] == "high"


def test_warm_process_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert startup_findings(runs["fixed"]) == []


def test_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """Per request, the warm process saves the start-up that the short-lived one spreads over
    its three requests. The estimate per request must be within 25 % of that saving."""
    planted, fixed = runs["planted"], runs["fixed"]
    measured_ms = 1000 * (
        planted["wall_s"] / planted["requests"]["count"]
        - fixed["wall_s"] / fixed["requests"]["count"]
    )
    estimate_ms = startup_findings(planted)[0]["saving_per_request_ms"]
    assert estimate_ms == pytest.approx(measured_ms, rel=0.25)
