"""The model-runtime rule on a scikit-learn model served in small batches, and on its compiled twin."""

from __future__ import annotations

from typing import Any

import pytest

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import RuleContext
from aitax.analysis.rules.model_runtime import ModelRuntimeRule
from aitax.analysis.samples import Sample
from aitax.model.run import RequestStats, StageStats
from conftest import profile_source

SKLEARN_SERVED = """
import numpy as np
import aitax
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

features, labels = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(features, labels)

def predict(rows):
    return model.predict_proba(rows)

for request in range(300):
    rows = features[request % 146 : request % 146 + 4]
    with aitax.request(size=4):
        with aitax.stage("inference"):
            probabilities = predict(rows)
"""
# The twin replaces a compiled runtime, because ONNX Runtime is not a test dependency. It
# applies the fitted coefficients with numpy, with no per-call input checks.
COMPILED = SKLEARN_SERVED.replace(
    """def predict(rows):
    return model.predict_proba(rows)""",
    """weights, bias = model.coef_.T.copy(), model.intercept_.copy()

def predict(rows):
    scores = rows @ weights + bias
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)""",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        "planted": profile_source(tmp_path_factory.mktemp("planted"), SKLEARN_SERVED),
        "fixed": profile_source(tmp_path_factory.mktemp("fixed"), COMPILED),
    }


def runtime_findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [finding for finding in run["findings"] if finding["category"] == "runtime"]


def inference_cpu_s(run: dict[str, Any]) -> float:
    return sum(s["cpu_s"] or 0.0 for s in run["stages"] if s["name"] == "inference")


def test_sklearn_model_fires_in_top_three(runs: dict[str, dict[str, Any]]) -> None:
    findings = runs["planted"]["findings"]
    assert "runtime" in [finding["category"] for finding in findings[:3]]
    finding = runtime_findings(runs["planted"])[0]
    assert finding["stage"] == "inference"
    assert "ONNX Runtime" in finding["fix"]
    assert "estimate" in finding["saving_basis"].lower()


def test_compiled_twin_does_not_fire(runs: dict[str, dict[str, Any]]) -> None:
    assert runtime_findings(runs["fixed"]) == []


def test_estimate_near_measured(runs: dict[str, dict[str, Any]]) -> None:
    """The estimate counts only the library's input checks and conversions, not its other
    Python dispatch. So it may fall short of the saving measured against the compiled twin,
    and must be within 0.4x-1.2x of it."""
    measured_ms = 1000 * (inference_cpu_s(runs["planted"]) - inference_cpu_s(runs["fixed"]))
    estimate_ms = runtime_findings(runs["planted"])[0]["estimated_saving_ms"]
    assert 0.4 * measured_ms <= estimate_ms <= 1.2 * measured_ms


def frame(function: str, module: str | None, builtin: bool = False) -> FrameInfo:
    file = "<built-in>" if builtin else f"/site-packages/{(module or 'x').replace('.', '/')}.py"
    return FrameInfo(function, file, 1, module, user_code=False, builtin=builtin)


def test_torch_linear_layers_suggest_int8() -> None:
    """PyTorch is not a test dependency, so its samples are built by hand."""
    user = FrameInfo("serve", "/app/serve.py", 3, "serve", user_code=True, builtin=False)
    stack = (
        user,
        frame("Module._call_impl", "torch.nn.modules.module"),
        frame("Linear.forward", "torch.nn.modules.linear"),
        frame("linear", None, builtin=True),
    )
    samples = [Sample(stack, 0.001, "inference", "inference") for _ in range(400)]
    context = RuleContext(
        wall_s=1.0,
        stages=[StageStats("inference", 0.8, 0.8, 0.8, 100, None, None, None, "marked")],
        requests=RequestStats(0, 0, None, None, None, None, None, None, None),
        stage_events=[],
        request_events=[],
        samples=samples,
        sample_scale=1.0,
    )
    findings = ModelRuntimeRule().evaluate(context)
    quantize = [finding for finding in findings if "Linear" in finding.title]
    assert len(quantize) == 1
    assert quantize[0].estimated_saving_ms == pytest.approx(400.0)
    assert "quantize_dynamic" in quantize[0].code_sketch
