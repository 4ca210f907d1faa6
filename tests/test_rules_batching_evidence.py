"""The batching rule fires only on model calls, and words its evidence from the request markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import RuleContext
from aitax.analysis.rules.batching import BatchRule
from aitax.analysis.samples import Sample
from aitax.markers import RequestEvent, StageEvent
from aitax.model.run import RequestStats, StageStats
from conftest import profile_source

# A 50-tree forest's predict_proba on 512 rows took about 5 ms per call on a
# 2-core VM. The CPU pass spaces its samples further apart when they are costly
# (0.2 s in one run), so 100 calls give it time to sample the model call.
BATCH_OF_512_UNMARKED = """
import aitax, numpy as np
from sklearn.ensemble import RandomForestClassifier
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 4))
model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)
model.fit(x, (x[:, 0] > 0).astype(int))
for _ in range(100):
    with aitax.request():
        with aitax.stage("inference"):
            model.predict_proba(x)
"""
INFERENCE_WITHOUT_MODEL = """
import time, aitax
for i in range(40):
    with aitax.request():
        with aitax.stage("inference"):
            time.sleep(0.002)
            total = sum(j * j for j in range(2000))
"""

USER = FrameInfo("serve", "/app/serve.py", 3, "serve", user_code=True, builtin=False)
PREDICT = FrameInfo(
    "LogisticRegression.predict_proba",
    "/site-packages/sklearn/linear_model/_logistic.py",
    1,
    "sklearn.linear_model._logistic",
    user_code=False,
    builtin=False,
)
SLEEP = FrameInfo("sleep", "<built-in>", 0, None, user_code=False, builtin=True)


def context_of(stack: tuple[FrameInfo, ...], sizes: list[int]) -> RuleContext:
    """Build a run of one 1 ms inference call per request, with `sizes` items per request."""
    requests = []
    calls = []
    for request_id, size in enumerate(sizes):
        start_ns = request_id * 2_000_000
        requests.append(RequestEvent(request_id, size, start_ns, start_ns + 1_500_000, 1))
        calls.append(
            StageEvent(
                "inference",
                start_ns=start_ns + 100_000,
                end_ns=start_ns + 1_100_000,
                cpu_ns=1_000_000,
                child_ns=0,
                child_cpu_ns=0,
                thread_id=1,
                request_id=request_id,
            )
        )

    total_s = len(sizes) * 0.001
    stage = StageStats("inference", total_s, 0.5, total_s, len(sizes), 1.0, 1.0, 1.0, "marked")
    return RuleContext(
        wall_s=len(sizes) * 0.002,
        stages=[stage],
        requests=RequestStats(len(sizes), sum(sizes), 1.5, 1.5, 1.5, 1.5, 1.5, None, None),
        stage_events=calls,
        request_events=requests,
        samples=[Sample(stack, 0.001, "inference", "inference") for _ in sizes],
        sample_scale=1.0,
    )


def test_one_item_model_calls_fire_with_marker_evidence() -> None:
    findings = BatchRule().evaluate(context_of((USER, PREDICT), [1] * 30))
    assert len(findings) == 1
    finding = findings[0]
    assert "row" not in finding.title
    assert "had one row" not in finding.evidence
    assert "30 of 30 inference calls ran in requests marked as one item" in finding.evidence
    assert "aitax.request(size=len(batch))" in finding.evidence
    assert "one-item calls" in finding.saving_basis
    assert finding.estimated_saving_ms > 0


def test_inference_without_model_does_not_fire() -> None:
    assert BatchRule().evaluate(context_of((USER, SLEEP), [1] * 30)) == []


def test_no_cpu_samples_does_not_fire() -> None:
    context = context_of((USER, PREDICT), [1] * 30)
    without_samples = RuleContext(
        wall_s=context.wall_s,
        stages=context.stages,
        requests=context.requests,
        stage_events=context.stage_events,
        request_events=context.request_events,
        samples=[],
        sample_scale=1.0,
    )
    assert BatchRule().evaluate(without_samples) == []


def test_marked_batches_do_not_fire() -> None:
    assert BatchRule().evaluate(context_of((USER, PREDICT), [512] * 30)) == []


def batch_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "batch"]


def test_unmarked_512_row_batches_claim_no_rows(tmp_path: Path) -> None:
    run = profile_source(tmp_path, BATCH_OF_512_UNMARKED)
    assert [spot for spot in run["hotspots"] if spot["stage"] == "inference"]

    # Nothing shows aitax the 512 rows, so the finding fires. Its text must claim no
    # row count and must state that the item count comes from the markers.
    findings = batch_findings(run)
    assert len(findings) == 1
    finding = findings[0]
    for key in ("title", "evidence", "saving_basis"):
        assert "one row" not in finding[key], key
        assert "single-row" not in finding[key], key
    assert "100 of 100 inference calls ran in requests marked as one item" in finding["evidence"]
    assert "comes from these markers" in finding["evidence"]
    assert "aitax.request(size=len(batch))" in finding["evidence"]


def test_inference_stage_without_model_gets_no_finding(tmp_path: Path) -> None:
    run = profile_source(tmp_path, INFERENCE_WITHOUT_MODEL)
    assert len([s for s in run["stages"] if s["name"] == "inference"]) == 1
    assert batch_findings(run) == []
