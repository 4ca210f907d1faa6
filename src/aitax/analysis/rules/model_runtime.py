"""Models served through their Python training library, where a compiled runtime would do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.batching import BatchRule
from aitax.analysis.rules.stage_time import clean_seconds
from aitax.analysis.samples import Sample
from aitax.model.run import Finding

# Input checks and conversions in the model library must take this share of the
# serving time, and this share of the time inside the library, before the rule
# reports them. The int8 saving must reach the same share of the serving time.
MIN_SHARE = 0.03
MIN_OVERHEAD_FRACTION = 0.3
# A cost paid per call matters when the model is called this many times or more:
# the marked spans of the model's stage, or the requests when that stage is not marked.
MIN_CALLS = 20
# Speedup of dynamic int8 quantization on the Linear layers' time. The PyTorch
# quantization documentation (docs/source/quantization.rst) puts INT8 compute at
# "typically 2 to 4 times faster" than FP32; the estimate takes the low end.
INT8_SPEEDUP = 2.0

MODEL_LIBRARIES = ("sklearn", "lightgbm", "xgboost", "torch")
_TRAINING = frozenset({"fit", "partial_fit", "fit_transform", "train"})
_PREDICTION = frozenset({
    "predict", "predict_proba", "predict_log_proba", "decision_function", "score_samples",
    "transform", "inplace_predict", "forward", "_call_impl", "_wrapped_call_impl",
})  # fmt: skip
# Input checks, configuration lookups and conversions that the library runs on
# every call, found by function name and by pandas frames below the library's
# entry. A compiled runtime checks only the input's shape and type. Python
# dispatch outside these functions is not counted, because numpy operators and
# ufuncs leave no frame of their own and cannot be distinguished from it.
_VALIDATION_WORDS = ("check", "validat", "finite", "config", "feature_names", "tags")
_CONVERSION_MODULES = ("pandas",)
_TORCH_LINEAR_MODULE = "torch.nn.modules.linear"
_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


@dataclass
class _ModelTime:
    library: str
    samples: list[Sample] = field(default_factory=list)
    overhead: list[Sample] = field(default_factory=list)
    linear: list[Sample] = field(default_factory=list)
    stages: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    callers: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def stage(self) -> str:
        return max(self.stages, key=self.stages.__getitem__)

    @property
    def top_callers(self) -> list[str]:
        return sorted(self.callers, key=self.callers.__getitem__, reverse=True)[:3]


class ModelRuntimeRule:
    name = "python-model-runtime"
    category = "runtime"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        if context.serving_s <= 0:
            return []
        # Single-row calls pay the checks once per row; the batch rule reports that
        # first, because batching also removes most of this overhead.
        batching_first = bool(BatchRule().evaluate(context))
        findings = []
        for model in _measure(context.samples).values():
            overhead_s = clean_seconds(context, model.overhead)
            total_s = clean_seconds(context, model.samples)
            if (
                not batching_first
                and _calls(context, model.stage) >= MIN_CALLS
                and overhead_s / context.serving_s >= MIN_SHARE
                and overhead_s / total_s >= MIN_OVERHEAD_FRACTION
            ):
                findings.append(self._runtime_finding(context, model, overhead_s, total_s))
            linear_s = clean_seconds(context, model.linear)
            saving = linear_s * (1 - 1 / INT8_SPEEDUP)
            if saving / context.serving_s >= MIN_SHARE:
                findings.append(self._quantize_finding(context, model, linear_s, saving))
        return findings

    def _runtime_finding(
        self, context: RuleContext, model: _ModelTime, overhead_s: float, total_s: float
    ) -> Finding:
        return make_finding(
            self,
            context,
            stage=model.stage,
            title=f"{model.library} model served from Python",
            evidence=(
                f"Calls into {model.library} took {format_ms(total_s)}; "
                f"{format_ms(overhead_s)} of it ({overhead_s / total_s:.0%}) went to input checks "
                "and conversions that run on every call, not to the model's arithmetic."
            ),
            estimate=Estimate(
                overhead_s,
                f"the {format_ms(overhead_s)} in the library's input checks and conversions, "
                "which a compiled runtime replaces by a shape and type check; the arithmetic "
                "is assumed to take as long there, and the runtime's own per-call cost is not "
                "counted. An estimate",
            ),
            fix=(
                "Export the model to ONNX (skl2onnx, onnxmltools for LightGBM and XGBoost, "
                "torch.onnx for PyTorch) and serve it with ONNX Runtime, which checks only the "
                "input's shape and type. Check that its predictions match before switching."
            ),
            code_sketch=(
                "import onnxruntime as ort\n"
                "from skl2onnx import to_onnx\n\n"
                "onnx_model = to_onnx(model, X_train[:1].astype('float32'))\n"
                "session = ort.InferenceSession(onnx_model.SerializeToString())\n"
                "label, probabilities = session.run(None, {'X': x.astype('float32')})"
            ),
            locations=model.top_callers,
        )

    def _quantize_finding(
        self, context: RuleContext, model: _ModelTime, linear_s: float, saving: float
    ) -> Finding:
        return make_finding(
            self,
            context,
            stage=model.stage,
            title="PyTorch Linear layers run in float32",
            evidence=(
                f"torch.nn.Linear layers took {format_ms(linear_s)} "
                f"({linear_s / context.wall_s:.0%} of the run) in float32 matrix products."
            ),
            estimate=Estimate(
                saving,
                f"{format_ms(linear_s)} in Linear layers x (1 - 1/{INT8_SPEEDUP:g}): the low "
                "end of the 2-4x INT8 speedup that the PyTorch quantization documentation "
                "states. An estimate; check the accuracy of the quantized model",
            ),
            fix=(
                "Quantize the Linear layers dynamically to int8 for CPU inference "
                "(weights stored as int8, activations quantized per batch)."
            ),
            code_sketch=(
                "import torch\n\n"
                "quantized = torch.ao.quantization.quantize_dynamic(\n"
                "    model, {torch.nn.Linear}, dtype=torch.qint8\n"
                ")"
            ),
            locations=model.top_callers,
        )


def _calls(context: RuleContext, stage: str) -> int:
    """Count the model's calls: its stage's marked spans, or else the requests."""
    spans = sum(1 for event in context.stage_events if event.name == stage)
    return spans or len(context.request_events)


def _measure(samples: Sequence[Sample]) -> dict[str, _ModelTime]:
    models: dict[str, _ModelTime] = {}
    for sample in samples:
        index = _library_entry(sample.frames)
        if index is None:
            continue
        library = _library_of(sample.frames[index]) or "?"
        model = models.setdefault(library, _ModelTime(library))
        model.samples.append(sample)
        model.stages[sample.stage] += sample.seconds
        inside = sample.frames[index:]
        if _is_overhead(inside):
            model.overhead.append(sample)
        if any((frame.module or "") == _TORCH_LINEAR_MODULE for frame in inside):
            model.linear.append(sample)
        caller = _user_caller(sample.frames[:index])
        if caller is not None:
            model.callers[caller.location] += sample.seconds
    return models


def _library_entry(frames: tuple[FrameInfo, ...]) -> int | None:
    """Return the index of the outermost model-library frame of a prediction, or None.

    Imports of the library and training calls are not predictions.
    """
    if any(frame.file in _IMPORT_FILES for frame in frames):
        return None
    for index, frame in enumerate(frames):
        if _library_of(frame) is not None:
            names = {f.function.rsplit(".", 1)[-1] for f in frames[index:]}
            if names & _TRAINING or not names & _PREDICTION:
                return None
            return index
    return None


def _library_of(frame: FrameInfo) -> str | None:
    module = frame.module or ""
    for library in MODEL_LIBRARIES:
        if module == library or module.startswith(library + "."):
            return library
    return None


def _is_overhead(frames: tuple[FrameInfo, ...]) -> bool:
    """Return True when a sample inside the library is in an input check or conversion."""
    for frame in frames:
        module = frame.module or ""
        if any(module == name or module.startswith(name + ".") for name in _CONVERSION_MODULES):
            return True
        name = frame.function.rsplit(".", 1)[-1].lower()
        if any(word in name for word in _VALIDATION_WORDS):
            return True
    return False


def _user_caller(frames: tuple[FrameInfo, ...]) -> FrameInfo | None:
    for frame in reversed(frames):
        if frame.user_code:
            return frame
    return None
