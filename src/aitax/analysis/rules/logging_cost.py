"""Logging and serialization that take a real share of the run."""

from __future__ import annotations

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.markers import LOGGING
from aitax.model.run import Finding

# The logging stage must take this share of the run, and serialization plus
# formatting inside it this share, before the rule reports it.
MIN_SHARE = 0.05
MIN_SAVING_SHARE = 0.02

_SERIALIZERS = ("json", "simplejson", "orjson", "ujson", "pickle", "yaml")


def _module_in(frame: FrameInfo, prefixes: tuple[str, ...]) -> bool:
    module = frame.module or ""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _is_serialization(frame: FrameInfo) -> bool:
    return _module_in(frame, _SERIALIZERS)


def _is_formatting(frame: FrameInfo) -> bool:
    name = frame.function.rsplit(".", 1)[-1]
    return _module_in(frame, ("logging",)) and name in {"format", "getMessage", "formatMessage"}


class LoggingRule:
    name = "costly-logging"
    category = "logging"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        logging_s = context.stage_total_s(LOGGING)
        if context.wall_s <= 0 or logging_s / context.wall_s < MIN_SHARE:
            return []

        in_stage = [sample for sample in context.samples if sample.stage == LOGGING]
        stage_samples_s = sum(sample.seconds for sample in in_stage)
        serialization_s = sum(s.seconds for s in in_stage if any(map(_is_serialization, s.frames)))
        formatting_s = sum(
            s.seconds
            for s in in_stage
            if any(map(_is_formatting, s.frames)) and not any(map(_is_serialization, s.frames))
        )
        if stage_samples_s <= 0:
            return []

        removable = (serialization_s + formatting_s) / stage_samples_s
        saving = logging_s * removable
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
                    f"({logging_s / context.wall_s:.0%} of the run); within it, serialization took "
                    f"{serialization_s / stage_samples_s:.0%} and message formatting "
                    f"{formatting_s / stage_samples_s:.0%} of the sampled time."
                ),
                estimate=Estimate(
                    saving,
                    f"the serialization and formatting share ({removable:.0%}) of "
                    f"{format_ms(logging_s)} in the logging stage",
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
