"""The eager-log-formatting rule on f-string debug messages that the INFO level drops."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from aitax.capture.log_watch import LogWatch, read_log_sites
from conftest import profile_source

EAGER_DEBUG = """
import logging

import numpy as np
import aitax

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("scoring")
weights = np.linspace(0.0, 1.0, 400)

def score(features):
    log.debug(f"scoring features {features}")  # formatted even though DEBUG is off
    return float(features @ weights)

for request in range(150):
    features = np.random.default_rng(request).random(400)
    with aitax.request():
        with aitax.stage("feature_compute"):
            value = score(features)
"""
# The fix passes the array as an argument, so logging formats it only if DEBUG is on.
LAZY_DEBUG = EAGER_DEBUG.replace(
    'log.debug(f"scoring features {features}")', 'log.debug("scoring features %s", features)'
)
RULE = "eager-log-formatting"
ORIGINAL_IS_ENABLED_FOR = logging.Logger.isEnabledFor


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), EAGER_DEBUG),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), LAZY_DEBUG),
    }


def eager_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["rule"] == RULE]


def compute_cpu_s(run: dict[str, Any]) -> float:
    return sum(
        s["cpu_s"] or 0.0
        for s in run["stages"]
        if s["name"] == "feature_compute" and s["source"] == "marked"
    )


def test_eager_debug_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert RULE in [finding["rule"] for finding in findings[:3]]
    finding = eager_findings(runs["planted"])[0]
    assert finding["stage"] == "feature_compute"
    assert "150 log calls in score" in finding["evidence"]
    lines = EAGER_DEBUG.splitlines()
    call = next(number for number, line in enumerate(lines, 1) if "log.debug(f" in line)
    assert finding["locations"][0].endswith(f"pipeline.py:{call}")


def test_lazy_debug_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert eager_findings(runs["fixed"]) == []


def test_eager_debug_not_reported_as_serialization(runs: dict[str, dict[str, Any]]) -> None:
    categories = [finding["category"] for finding in runs["planted"]["findings"]]
    assert "serialization" not in categories


def test_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """The estimate must fall within 30 % of the CPU time that lazy formatting saved."""
    measured_ms = 1000 * (compute_cpu_s(runs["planted"]) - compute_cpu_s(runs["fixed"]))
    estimate_ms = eager_findings(runs["planted"])[0]["estimated_saving_ms"]
    assert estimate_ms == pytest.approx(measured_ms, rel=0.3)


def test_log_watch_counts_eager_dropped_calls() -> None:
    log = logging.getLogger("aitax-test-log-watch")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(logging.NullHandler())
    watch = LogWatch()
    watch.install()
    try:
        for value in range(3):
            log.debug(f"value {value}")
            log.debug("constant message")
            log.debug("value %s", value)
            log.info("kept %s", value)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("guarded")
    finally:
        sites = read_log_sites(watch.stop())

    assert logging.Logger.isEnabledFor is ORIGINAL_IS_ENABLED_FOR
    by_line = {site.line: site for site in sites}
    assert len(by_line) == 4
    eager, constant, lazy, kept = sorted(by_line.values(), key=lambda site: site.line)
    assert (eager.suppressed, eager.eager, eager.eager_chars) == (3, 3, 21)
    assert (constant.suppressed, constant.eager) == (3, 0)
    assert (lazy.suppressed, lazy.eager) == (3, 0)
    assert (kept.emitted, kept.suppressed) == (3, 0)
