"""Logging and serialization that take a real share of the run."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.batching import ASSUMED_BATCH_SIZE
from aitax.analysis.samples import Sample
from aitax.markers import LOGGING
from aitax.model.run import Finding

# The logging stage must take this share of the run, and the part of it that the
# fix removes this share, before the rule reports it.
MIN_SHARE = 0.05
MIN_SAVING_SHARE = 0.02
# Building, serializing and formatting the message must take this share of the
# logging stage: compact lines whose cost is the handler's own I/O do not fire.
MIN_PAYLOAD_SHARE = 0.25

_SERIALIZERS = ("json", "simplejson", "orjson", "ujson", "pickle", "yaml")
# Building the logged payload from frames and arrays (to_dict, tolist, indexing).
_PAYLOAD_BUILDERS = ("pandas", "numpy")
_FORMATTERS = frozenset({"format", "getMessage", "formatMessage", "formatTime"})


def _module_in(frame: FrameInfo, prefixes: tuple[str, ...]) -> bool:
    module = frame.module or ""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _part_of(sample: Sample) -> str:
    """Name what a logging-stage sample was doing: payload, formatting, handler I/O or other."""
    if any(_module_in(f, _SERIALIZERS) or _module_in(f, _PAYLOAD_BUILDERS) for f in sample.frames):
        return "payload"
    logging_frames = [f for f in sample.frames if _module_in(f, ("logging",))]
    if any(f.function.rsplit(".", 1)[-1] in _FORMATTERS for f in logging_frames):
        return "formatting"
    if logging_frames:
        return "handler"
    return "other"


@dataclass(frozen=True)
class _Breakdown:
    """Shares of the logging stage's sampled time."""

    payload: float
    formatting: float
    handler: float

    @property
    def removable(self) -> float:
        # Logging identifiers instead of whole payloads removes building and
        # serializing them, and formatting; one summary line per batch leaves one
        # handler call in ASSUMED_BATCH_SIZE.
        return self.payload + self.formatting + self.handler * (1 - 1 / ASSUMED_BATCH_SIZE)


def _breakdown(samples: list[Sample]) -> _Breakdown | None:
    seconds: dict[str, float] = defaultdict(float)
    for sample in samples:
        seconds[_part_of(sample)] += sample.seconds
    total = sum(seconds.values())
    if total <= 0:
        return None
    return _Breakdown(
        seconds["payload"] / total, seconds["formatting"] / total, seconds["handler"] / total
    )


class LoggingRule:
    name = "costly-logging"
    category = "logging"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        logging_s = context.stage_total_s(LOGGING)
        if context.wall_s <= 0 or logging_s / context.wall_s < MIN_SHARE:
            return []

        parts = _breakdown([sample for sample in context.samples if sample.stage == LOGGING])
        if parts is None or parts.payload + parts.formatting < MIN_PAYLOAD_SHARE:
            return []
        saving = logging_s * parts.removable
        if saving / context.wall_s < MIN_SAVING_SHARE:
            return []
        return [
            make_finding(
                self,
                context,
                stage=LOGGING,
                title="Logging costs a real share of the run",
                evidence=(
                    f"the logging stage took {format_ms(logging_s)} "
                    f"({logging_s / context.wall_s:.0%} of the run); within it, building and "
                    f"serializing the payload took {parts.payload:.0%}, message formatting "
                    f"{parts.formatting:.0%} and the log handlers {parts.handler:.0%} of the "
                    "sampled time."
                ),
                estimate=Estimate(
                    saving,
                    f"{parts.removable:.0%} of {format_ms(logging_s)}: the payload and formatting "
                    f"time, and the handler time of all but one request in {ASSUMED_BATCH_SIZE}",
                ),
                fix=(
                    "Log identifiers and a few summary fields instead of whole feature vectors, "
                    "aggregate per batch, and pass arguments to the logger lazily "
                    "(log.info('%s', x)) so that suppressed messages are never formatted."
                ),
                code_sketch=(
                    "# before\n"
                    "log.info(json.dumps({'id': i, 'features': features.to_dict()}))\n"
                    "# after\n"
                    "log.info('scored id=%s p=%.3f', i, p)"
                ),
            )
        ]
