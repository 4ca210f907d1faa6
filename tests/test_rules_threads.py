"""The thread-oversubscription rule on worker threads that each use a full BLAS pool."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import profile_source

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="BLAS pools have one thread on one core"
)

WORKERS_WITH_FULL_POOLS = """
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import aitax

weights = np.random.default_rng(0).random((160, 160))

def score(seed):
    batch = np.random.default_rng(seed).random((160, 160))
    with aitax.request(size=160):
        with aitax.stage("feature_compute"):
            for _ in range(6):
                batch = np.dot(batch, weights) / 160.0
    return float(batch.sum())

with ThreadPoolExecutor(max_workers=4) as pool:
    results = list(pool.map(score, range(80)))
"""
# The fix gives each worker a pool of one thread, set before numpy loads its BLAS library.
ONE_THREAD_POOLS = (
    'import os\nos.environ["OPENBLAS_NUM_THREADS"] = "1"\nos.environ["OMP_NUM_THREADS"] = "1"\n'
    + WORKERS_WITH_FULL_POOLS
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), WORKERS_WITH_FULL_POOLS),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), ONE_THREAD_POOLS),
    }


def thread_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "threads"]


def test_full_pools_fire_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert "threads" in [finding["category"] for finding in findings[:3]]
    finding = thread_findings(runs["planted"])[0]
    assert "4 threads did work" in finding["evidence"]
    assert "waited" in finding["saving_basis"]
    assert "threadpool_limits" in finding["code_sketch"]


def test_one_thread_pools_do_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert thread_findings(runs["fixed"]) == []


def test_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """The estimate comes from how long the workers' spans waited beyond their CPU time, which
    a busy machine also stretches. It must land within 0.3x-2x of the measured wall-time saving."""
    measured_ms = 1000 * (runs["planted"]["wall_s"] - runs["fixed"]["wall_s"])
    estimate_ms = thread_findings(runs["planted"])[0]["estimated_saving_ms"]
    assert measured_ms > 0
    assert 0.3 * measured_ms <= estimate_ms <= 2.0 * measured_ms
