"""Start-up work (imports, model loading) that a process serving few requests pays each time."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.samples import Sample
from aitax.capture.passes import watcher_record
from aitax.model.run import Finding

# The rule looks at processes that serve at most this many items (requests, or
# rows of batched requests), as a process started per request or per small batch
# does. A process serving more is taken to be a warm worker. Start-up must take at least this long, and must
# cost each request more than the median request takes to serve.
MAX_ITEMS = 10
MIN_STARTUP_S = 0.1

_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_LOADING_MODULES = ("pickle", "joblib", "torch.serialization", "safetensors")
_LOADING_FUNCTIONS = frozenset({"load", "loads", "load_file", "load_model"})
# pickle's C functions, as pyinstrument names the builtins.
_LOADING_BUILTINS = frozenset({"load", "loads", "Unpickler.load"})
_TRAINING_FUNCTIONS = frozenset({"fit", "partial_fit", "fit_transform", "train"})


class StartupRule:
    name = "startup-per-process"
    category = "startup"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        startup_s = startup_seconds(context)
        requests = context.requests
        if startup_s is None or startup_s < MIN_STARTUP_S or not requests.p50_ms:
            return []
        if requests.items > MAX_ITEMS:
            return []
        per_request_s = startup_s / requests.count
        if per_request_s * 1000 < requests.p50_ms:
            return []
        return [self._finding(context, startup_s, per_request_s)]

    def _finding(self, context: RuleContext, startup_s: float, per_request_s: float) -> Finding:
        import_s = context.scaled(_sampled(context.samples, _in_import))
        loading_s = context.scaled(_sampled(context.samples, _in_model_loading))
        training_s = context.scaled(_sampled(context.samples, _in_training))
        requests = context.requests
        return make_finding(
            self,
            context,
            stage="other",
            title="Start-up costs more than serving the requests",
            evidence=(
                f"The first request started {format_ms(startup_s)} after the target began, and "
                f"the process served {requests.count:,} requests: {format_ms(per_request_s)} of "
                f"start-up per request against a median latency of {requests.p50_ms:.2f} ms. "
                f"The CPU pass sampled {format_ms(import_s)} in imports, "
                f"{format_ms(loading_s)} loading models or data and {format_ms(training_s)} "
                "fitting models."
            ),
            estimate=Estimate(
                startup_s,
                f"all {format_ms(startup_s)} from the target's start to the first request, which "
                "a warm process pays once for all the requests it serves",
            ),
            fix=(
                "Keep the process warm: serve requests from a long-running worker (a web "
                "server, a queue consumer) that imports and loads the model once. Where a "
                "process per request cannot be avoided, import heavy modules lazily, save a "
                "fitted model instead of fitting at start-up, and load it with memory mapping."
            ),
            code_sketch=(
                "# load once per process, not once per request\n"
                "model = joblib.load('model.joblib', mmap_mode='r')\n\n"
                "def handle(request):\n"
                "    return model.predict(request.features)"
            ),
        )


def startup_seconds(context: RuleContext) -> float | None:
    """Return the time from the timing pass's start to its first request, or None."""
    watchers = watcher_record(context.pass_extras, ("clean", "cpu"))
    if not isinstance(watchers, dict) or not context.request_events:
        return None
    started_ns = watchers.get("started_ns")
    if not isinstance(started_ns, int):
        return None
    first_ns = min(event.start_ns for event in context.request_events)
    return max(0.0, (first_ns - started_ns) / 1e9)


def _sampled(samples: Sequence[Sample], predicate: Callable[[FrameInfo], bool]) -> float:
    return sum(sample.seconds for sample in samples if any(map(predicate, sample.frames)))


def _in_import(frame: FrameInfo) -> bool:
    return frame.file in _IMPORT_FILES


def _in_model_loading(frame: FrameInfo) -> bool:
    if frame.builtin:
        return frame.function in _LOADING_BUILTINS
    module = frame.module or ""
    if not any(module == name or module.startswith(name + ".") for name in _LOADING_MODULES):
        return False
    return frame.function.rsplit(".", 1)[-1] in _LOADING_FUNCTIONS


def _in_training(frame: FrameInfo) -> bool:
    return not frame.builtin and frame.function.rsplit(".", 1)[-1] in _TRAINING_FUNCTIONS
