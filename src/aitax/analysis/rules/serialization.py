"""JSON and pickle work on the request path, outside logging."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from aitax.analysis.classify import OTHER
from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.eager_log_format import eager_log_functions, formatting_caller
from aitax.analysis.rules.stage_time import clean_seconds
from aitax.analysis.samples import Sample
from aitax.capture.passes import watcher_record
from aitax.markers import LOGGING
from aitax.model.run import Finding

# A kind of serialization must take this share of the serving time before it is reported.
MIN_SHARE = 0.03

# Speedups of orjson over the standard library's json, from the orjson 1.3.0
# project description on PyPI: "4.5x to 11.5x" for serialization and "1.2x to
# 4x" for deserialization. They hold for the types that orjson serializes
# (str, dict, list, tuple, int, float, None). The estimate takes the low end.
ORJSON_ENCODE_SPEEDUP = 4.5
ORJSON_DECODE_SPEEDUP = 1.2

JSON_ENCODE = "json-encode"
JSON_DECODE = "json-decode"
PICKLE = "pickle"

# pickle's C functions, as pyinstrument names the builtins. Other C extensions
# (orjson, ujson, msgpack) use the same names, so they count only when none is loaded.
_PICKLE_BUILTINS = frozenset({"dumps", "loads", "dump", "load", "Pickler.dump", "Unpickler.load"})
_ENCODE_FUNCTIONS = frozenset({"dumps", "dump"})
# Unpickling done by the import system (marshal) or by model loaders belongs to start-up.
_SKIPPED_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_SKIPPED_MODULES = ("logging", "joblib", "torch.serialization")


@dataclass
class _Work:
    kind: str
    samples: list[Sample] = field(default_factory=list)
    callbacks: list[Sample] = field(default_factory=list)
    callers: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    stages: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


class SerializationRule:
    name = "hot-serialization"
    category = "serialization"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        if context.serving_s <= 0:
            return []
        work = self._measure(context)
        findings = []
        for entry in work.values():
            seconds = clean_seconds(context, entry.samples)
            if seconds / context.serving_s >= MIN_SHARE:
                findings.append(self._finding(context, entry, seconds))
        return findings

    def _measure(self, context: RuleContext) -> dict[str, _Work]:
        pickle_is_only_c_serializer = not _other_c_serializers(context)
        eager_logging = eager_log_functions(context)
        # With requests marked, time in no stage at all is start-up or shutdown.
        skip_other = bool(context.request_events)
        work: dict[str, _Work] = {}
        for sample in context.samples:
            if skip_other and sample.stage == OTHER:
                continue
            if _skipped(sample) or _claimed_by_eager_logging(sample, eager_logging):
                continue
            found = _serialization_in(sample, pickle_is_only_c_serializer)
            if found is None:
                continue
            kind, index = found
            entry = work.setdefault(kind, _Work(kind))
            entry.samples.append(sample)
            if any(frame.user_code for frame in sample.frames[index + 1 :]):
                entry.callbacks.append(sample)
            caller = _user_caller(sample.frames[:index])
            if caller is not None:
                entry.callers[caller.location] += sample.seconds
            entry.stages[sample.stage] += sample.seconds
        return work

    def _finding(self, context: RuleContext, work: _Work, seconds: float) -> Finding:
        callback_s = clean_seconds(context, work.callbacks)
        saving, basis, fix, sketch = _advice(work.kind, seconds, callback_s)
        label = {JSON_ENCODE: "JSON encoding", JSON_DECODE: "JSON decoding"}.get(
            work.kind, "pickle"
        )
        callers = sorted(work.callers, key=work.callers.__getitem__, reverse=True)[:3]
        return make_finding(
            self,
            context,
            stage=max(work.stages, key=work.stages.__getitem__),
            title=f"{label[0].upper()}{label[1:]} takes a real share of the run",
            evidence=_evidence(label, seconds, context.wall_s, callback_s, callers),
            estimate=Estimate(saving, basis),
            fix=fix,
            code_sketch=sketch,
            locations=callers,
        )


def _evidence(
    label: str, seconds: float, wall_s: float, callback_s: float, callers: list[str]
) -> str:
    text = (
        f"{label} outside the logging stage took {format_ms(seconds)} "
        f"({seconds / wall_s:.0%} of the run), called from {', '.join(callers) or 'library code'}."
    )
    if callback_s > 0:
        text += (
            f" {format_ms(callback_s)} of it ran in your own default= or object_hook= callbacks."
        )
    return text


def _advice(kind: str, seconds: float, callback_s: float) -> tuple[float, str, str, str]:
    """Return the saving, its basis, the fix and a code sketch for one kind of serialization."""
    library_s = max(0.0, seconds - callback_s)
    if kind in (JSON_ENCODE, JSON_DECODE):
        speedup = ORJSON_ENCODE_SPEEDUP if kind == JSON_ENCODE else ORJSON_DECODE_SPEEDUP
        saving = library_s * (1 - 1 / speedup)
        basis = (
            f"{format_ms(library_s)} in the json module (your callbacks excluded) x "
            f"(1 - 1/{speedup}): the low end of orjson's published speedup over json "
            "(orjson 1.3.0 project description). An estimate"
        )
        fix = (
            "Use orjson for payloads of str, dict, list and numbers (it returns bytes, and "
            "serializes dataclasses and numpy arrays natively), or skip the round trip when "
            "the data stays in the process."
        )
        sketch = "import orjson\n\nbody = orjson.dumps(payload)\npayload = orjson.loads(body)"
        return saving, basis, fix, sketch
    basis = (
        f"upper bound: all {format_ms(seconds)} in pickle, saved only where the object need "
        "not be serialized (it stays in the process, or its bytes are cached). No faster "
        "drop-in library is assumed for arbitrary Python objects"
    )
    fix = (
        "Serialize less: keep objects in the process instead of round-tripping them, cache "
        "the bytes of payloads that do not change, and for large numpy arrays use protocol 5, "
        "which avoids copying their buffers."
    )
    sketch = (
        "# before, per request\n"
        "state = pickle.loads(pickle.dumps(template))\n"
        "# after: build once, copy only what changes\n"
        "state = dict(template)"
    )
    return seconds, basis, fix, sketch


def _serialization_in(sample: Sample, pickle_is_only_c_serializer: bool) -> tuple[str, int] | None:
    """Return the kind of serialization in `sample` and the index of its outermost frame."""
    for index, frame in enumerate(sample.frames):
        kind = _kind_of(frame, pickle_is_only_c_serializer)
        if kind is not None:
            return kind, index
    return None


def _kind_of(frame: FrameInfo, pickle_is_only_c_serializer: bool) -> str | None:
    module = frame.module or ""
    name = frame.function.rsplit(".", 1)[-1]
    if module == "json" or module.startswith("json."):
        encode = module == "json.encoder" or name in _ENCODE_FUNCTIONS
        return JSON_ENCODE if encode else JSON_DECODE
    if module == "pickle" or module == "copyreg":
        return PICKLE
    if frame.builtin and pickle_is_only_c_serializer and frame.function in _PICKLE_BUILTINS:
        return PICKLE
    return None


def _skipped(sample: Sample) -> bool:
    """Return True for samples in the logging stage, in logging calls, or in start-up loading."""
    if sample.marked_stage == LOGGING:
        return True
    for frame in sample.frames:
        module = frame.module or ""
        if frame.file in _SKIPPED_FILES:
            return True
        if any(module == name or module.startswith(name + ".") for name in _SKIPPED_MODULES):
            return True
    return False


def _other_c_serializers(context: RuleContext) -> bool:
    watchers = watcher_record(context.pass_extras, ("cpu", "line", "clean"))
    loaded = watchers.get("loaded_serializers") if isinstance(watchers, dict) else None
    return bool(loaded)


def _claimed_by_eager_logging(sample: Sample, eager: set[tuple[str, int]]) -> bool:
    """Return True for formatting of a dropped log message, which the eager-logging rule reports."""
    caller = formatting_caller(sample)
    return caller is not None and (caller.file, caller.line) in eager


def _user_caller(frames: tuple[FrameInfo, ...]) -> FrameInfo | None:
    for frame in reversed(frames):
        if frame.user_code:
            return frame
    return None
