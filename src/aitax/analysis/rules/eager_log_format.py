"""Log messages formatted before the call (f-strings, str.format) although the level drops them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from aitax.analysis.frames import FrameInfo
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.stage_time import clean_seconds
from aitax.analysis.samples import Sample
from aitax.capture.log_watch import LogSite, read_log_sites
from aitax.capture.passes import watcher_record
from aitax.model.run import Finding

# Only the profiling passes watch log calls, because the watch runs Python code on each call.
LOG_PASSES = ("cpu", "line")
# The estimated saving must reach this share of the serving time.
MIN_SAVING_SHARE = 0.02

_FORMATTING_BUILTINS = frozenset({"repr", "format", "str.format", "str.format_map"})
_FORMATTING_MODULES = (
    "pprint", "reprlib", "json", "numpy.core.arrayprint", "numpy._core.arrayprint",
    "pandas.io.formats",
)  # fmt: skip
_FORMATTING_METHODS = ("__repr__", "__str__", "__format__")

Function = tuple[str, int]


@dataclass
class _EagerFunction:
    """A function with log calls that were formatted eagerly and then dropped."""

    sites: list[LogSite] = field(default_factory=list)
    formatting: list[Sample] = field(default_factory=list)

    @property
    def eager(self) -> int:
        return sum(site.eager for site in self.sites)

    @property
    def calls(self) -> int:
        return sum(site.emitted + site.suppressed for site in self.sites)


def eager_log_functions(context: RuleContext) -> set[Function]:
    """Return the functions, as (file, first line), that made eagerly formatted, dropped log calls."""
    sites = read_log_sites(_log_record(context))
    return {(site.file, site.first_line) for site in sites if site.eager}


def formatting_caller(sample: Sample) -> FrameInfo | None:
    """Return the user function that started string formatting in `sample`, outside logging."""
    if any(_in_module(frame, ("logging",)) for frame in sample.frames):
        return None
    for index, frame in enumerate(sample.frames):
        if index and _is_formatting(frame):
            caller = sample.frames[index - 1]
            return caller if caller.user_code else None
    return None


class EagerLogFormatRule:
    name = "eager-log-formatting"
    category = "logging"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        functions = self._eager_functions(context)
        if not functions or context.serving_s <= 0:
            return []
        for sample in context.samples:
            caller = formatting_caller(sample)
            if caller is not None and (caller.file, caller.line) in functions:
                functions[(caller.file, caller.line)].formatting.append(sample)

        findings = []
        for function in functions.values():
            formatting_s = clean_seconds(context, function.formatting)
            share = function.eager / function.calls if function.calls else 0.0
            saving = formatting_s * share
            if saving / context.serving_s >= MIN_SAVING_SHARE:
                findings.append(self._finding(context, function, formatting_s, saving, share))
        return findings

    def _eager_functions(self, context: RuleContext) -> dict[Function, _EagerFunction]:
        functions: dict[Function, _EagerFunction] = defaultdict(_EagerFunction)
        for site in read_log_sites(_log_record(context)):
            functions[(site.file, site.first_line)].sites.append(site)
        return {key: value for key, value in functions.items() if value.eager}

    def _finding(
        self,
        context: RuleContext,
        function: _EagerFunction,
        formatting_s: float,
        saving: float,
        share: float,
    ) -> Finding:
        first = function.sites[0]
        eager_sites = [site for site in function.sites if site.eager]
        chars = sum(site.eager_chars for site in eager_sites)
        return make_finding(
            self,
            context,
            stage=_stage_of(context, first),
            title=f"Log messages in {first.function} are formatted and then dropped",
            evidence=(
                f"{function.eager:,} log calls in {first.function} passed an already formatted "
                f"message ({chars / function.eager:,.0f} characters on average) below the "
                f"logger's level, so nothing was written; formatting under {first.function}, "
                f"outside logging, took {format_ms(formatting_s)}."
            ),
            estimate=Estimate(
                saving,
                f"{format_ms(formatting_s)} of sampled formatting in the function x {share:.0%}, "
                "the share of its log calls that were formatted and dropped",
            ),
            fix=(
                "Pass the values as arguments so that logging formats them only when the "
                "message is emitted, or guard costly messages with Logger.isEnabledFor."
            ),
            code_sketch=(
                "# before: the frame is rendered even when DEBUG is off\n"
                'log.debug(f"features: {frame}")\n'
                "# after\n"
                'log.debug("features: %s", frame)'
            ),
            locations=[f"{site.file}:{site.line}" for site in eager_sites],
        )


def _log_record(context: RuleContext) -> object:
    watchers = watcher_record(context.pass_extras, LOG_PASSES)
    return watchers.get("logs") if isinstance(watchers, dict) else None


def _in_module(frame: FrameInfo, prefixes: tuple[str, ...]) -> bool:
    module = frame.module or ""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _is_formatting(frame: FrameInfo) -> bool:
    if frame.builtin:
        return frame.function in _FORMATTING_BUILTINS
    if _in_module(frame, _FORMATTING_MODULES):
        return True
    return frame.function.rsplit(".", 1)[-1] in _FORMATTING_METHODS


def _stage_of(context: RuleContext, site: LogSite) -> str:
    seconds: dict[str, float] = defaultdict(float)
    for sample in context.samples:
        if any(
            frame.file == site.file and frame.line == site.first_line for frame in sample.frames
        ):
            seconds[sample.stage] += sample.seconds
    return max(seconds, key=seconds.__getitem__) if seconds else "other"
