"""The serialization rule on JSON and pickle round trips in the request path, and their fixes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from conftest import profile_source

JSON_ROUND_TRIP = """
import json
import aitax

payload = {"items": [{"id": i, "score": i * 0.001, "tags": ["a", "b", str(i)]} for i in range(1500)]}

for request in range(60):
    with aitax.request():
        with aitax.stage("feature_fetch"):
            body = json.dumps(payload)  # the payload crosses a process boundary as JSON
            restored = json.loads(body)
        with aitax.stage("feature_compute"):
            score = sum(item["score"] for item in restored["items"])
"""
# The fix keeps the payload in the process.
JSON_SKIPPED = JSON_ROUND_TRIP.replace("body = json.dumps(payload)", "body = None").replace(
    "restored = json.loads(body)", "restored = payload"
)
JSON_WITH_ORJSON = JSON_ROUND_TRIP.replace("import json\n", "import orjson as json\n")

PICKLE_COPY = """
import pickle
import aitax

template = {f"feature_{i}": [i * 0.5] * 40 for i in range(600)}

for request in range(60):
    with aitax.request():
        with aitax.stage("feature_compute"):
            state = pickle.loads(pickle.dumps(template))  # a deep copy through pickle
            state["feature_0"] = [request]
        with aitax.stage("postprocess"):
            score = sum(values[0] for values in state.values())
"""
# The fix copies only the mapping and replaces the entry that changes.
SHALLOW_COPY = PICKLE_COPY.replace("pickle.loads(pickle.dumps(template))", "dict(template)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    sources = {
        "json": JSON_ROUND_TRIP,
        "json-skipped": JSON_SKIPPED,
        "pickle": PICKLE_COPY,
        "pickle-fixed": SHALLOW_COPY,
    }
    return {
        name: profile_source(tmp_path_factory.mktemp(name), source)
        for name, source in sources.items()
    }


def serialization_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "serialization"]


def stage_cpu_s(run: dict[str, Any], name: str) -> float:
    """Return a marked stage's clean-pass CPU time, steadier than wall time on a busy machine."""
    return sum(
        s["cpu_s"] or 0.0 for s in run["stages"] if s["name"] == name and s["source"] == "marked"
    )


def test_json_round_trip_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["json"]["findings"]
    assert "serialization" in [finding["category"] for finding in findings[:3]]
    titles = [finding["title"] for finding in serialization_findings(runs["json"])]
    assert "JSON encoding takes a real share of the run" in titles
    assert "JSON decoding takes a real share of the run" in titles


def test_json_finding_names_orjson_as_estimate(runs: dict[str, dict[str, Any]]) -> None:
    encoding = next(
        f for f in serialization_findings(runs["json"]) if f["title"].startswith("JSON encoding")
    )
    assert "orjson" in encoding["fix"]
    assert "1 - 1/4.5" in encoding["saving_basis"]
    assert "estimate" in encoding["saving_basis"].lower()


def test_skipped_round_trip_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert serialization_findings(runs["json-skipped"]) == []


def test_pickle_copy_fires_without_naming_a_library(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["pickle"]["findings"]
    assert "serialization" in [finding["category"] for finding in findings[:3]]
    finding = serialization_findings(runs["pickle"])[0]
    assert finding["stage"] == "feature_compute"
    assert "upper bound" in finding["saving_basis"]
    assert "orjson" not in finding["fix"]


def test_shallow_copy_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert serialization_findings(runs["pickle-fixed"]) == []


def test_pickle_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """The upper bound counts pickle's own calls; freeing the copies also goes with the fix,
    so the estimate may fall short of the measured saving. It must be within 0.5x-1.5x."""
    measured_ms = 1000 * (
        stage_cpu_s(runs["pickle"], "feature_compute")
        - stage_cpu_s(runs["pickle-fixed"], "feature_compute")
    )
    estimate_ms = serialization_findings(runs["pickle"])[0]["estimated_saving_ms"]
    assert 0.5 * measured_ms <= estimate_ms <= 1.5 * measured_ms


@pytest.mark.skipif(importlib.util.find_spec("orjson") is None, reason="orjson is not installed")
def test_json_estimate_against_orjson(runs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """orjson's published speedups are ranges and the estimate takes their low end, so the
    estimate must fall between a quarter of the measured saving and 1.25 times it."""
    with_orjson = profile_source(tmp_path, JSON_WITH_ORJSON)
    measured_ms = 1000 * (
        stage_cpu_s(runs["json"], "feature_fetch") - stage_cpu_s(with_orjson, "feature_fetch")
    )
    estimate_ms = sum(f["estimated_saving_ms"] for f in serialization_findings(runs["json"]))
    assert 0.25 * measured_ms <= estimate_ms <= 1.25 * measured_ms
