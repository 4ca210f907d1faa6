"""Service-level objectives on a run's metrics, and the CI gate that checks them.

An objective is written `METRIC<=LIMIT` or `METRIC>=LIMIT` (also `<` and `>`),
such as `p99_ms<=120` or `throughput_rps>=50`. In `[tool.aitax.slo]` the value
is the limit alone, and the metric's direction sets the operator: `<=` for
metrics where lower is better, `>=` for throughput.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from aitax.analysis.compare import CompareSettings, Comparison, compare_runs
from aitax.analysis.metrics import STAGE_PREFIX, Metric, parse_metric, read_metric
from aitax.analysis.validation import is_finite_number
from aitax.model.run import Run

Operator = Literal["<=", ">=", "<", ">"]
Status = Literal["pass", "fail", "missing", "skipped"]

EXPRESSION_FORM = "METRIC<=LIMIT or METRIC>=LIMIT, for example p99_ms<=120 or throughput_rps>=50"

_OPERATORS: dict[Operator, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
# The pass that measures wall time, latencies and stages, and the metrics it does not measure.
TIMING_PASS = "clean"
_MEMORY_PASS_METRICS = frozenset({"memory_peak_mb"})
_EXPRESSION = re.compile(r"\s*(?P<metric>[^<>=\s]+)\s*(?P<operator><=|>=|<|>)\s*(?P<limit>\S+)\s*")


@dataclass(frozen=True)
class Objective:
    """A limit on one metric, and where it was set: `--slo` or a pyproject.toml path."""

    metric: Metric
    operator: Operator
    limit: float
    source: str

    @property
    def expression(self) -> str:
        return f"{self.metric.key}{self.operator}{self.limit:.15g}"


@dataclass(frozen=True)
class ObjectiveResult:
    """An objective checked against a run.

    `status` is "missing" when the run lacks the metric, and "skipped" when it
    lacks it but missing metrics were allowed. `message` then gives the reason.
    """

    objective: Objective
    value: float | None
    status: Status
    message: str | None = None


@dataclass
class CheckResult:
    """The outcome of the CI gate: each objective, and the comparison with a baseline if any."""

    partial: bool
    stop_reason: str | None
    objectives: list[ObjectiveResult]
    comparison: Comparison | None = None
    # Reasons the run's measurements cannot be trusted, from run_failures.
    run_failures: list[str] = dataclasses.field(default_factory=list)
    # Whether --allow-failed-run keeps run_failures from failing the check.
    allow_failed_run: bool = False

    @property
    def failed_objectives(self) -> list[ObjectiveResult]:
        return [result for result in self.objectives if result.status in ("fail", "missing")]

    @property
    def checked_objectives(self) -> list[ObjectiveResult]:
        return [result for result in self.objectives if result.status != "skipped"]

    @property
    def passed(self) -> bool:
        regressions = self.comparison.with_verdict("regression") if self.comparison else []
        failed_run = bool(self.run_failures) and not self.allow_failed_run
        return not self.failed_objectives and not regressions and not failed_run


def parse_objective(text: str, source: str = "--slo") -> Objective:
    """Parse `METRIC<=LIMIT`-style text; raise ValueError saying what is wrong."""
    match = _EXPRESSION.fullmatch(text)
    if match is None:
        raise ValueError("it is not a comparison of a metric with a limit")
    metric = parse_metric(match["metric"])
    limit = _parse_limit(match["limit"])
    # The pattern admits only the four operators.
    return Objective(metric, cast(Operator, match["operator"]), limit, source)


def _parse_limit(text: str) -> float:
    try:
        limit = float(text)
    except ValueError:
        raise ValueError(f"the limit {text!r} is not a number") from None
    if not math.isfinite(limit):
        raise ValueError(f"the limit {text!r} is not a finite number")
    return limit


def objectives_from_table(table: Mapping[str, Any], source: str) -> list[Objective]:
    """Build objectives from a `[tool.aitax.slo]` table; raise ValueError naming the bad key.

    Stage keys may be quoted (`"stage.inference.p95_ms" = 30`) or nested
    (`[tool.aitax.slo.stage.inference]` with `p95_ms = 30`).
    """
    return [
        _table_objective(key, limit, source) for key, limit in _flatten_stage_keys(table).items()
    ]


def _flatten_stage_keys(table: Mapping[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in table.items() if key != "stage"}
    stages = table.get("stage")
    if stages is None:
        return flat
    if not isinstance(stages, dict):
        raise ValueError(f"stage = {stages!r} is invalid; write stage.NAME.p95_ms = LIMIT")

    for name, fields in stages.items():
        if not isinstance(fields, dict):
            raise ValueError(
                f"stage.{name} = {fields!r} is invalid; write stage.{name}.p95_ms = LIMIT"
            )
        for field, limit in fields.items():
            flat[f"{STAGE_PREFIX}{name}.{field}"] = limit
    return flat


def _table_objective(key: str, limit: Any, source: str) -> Objective:
    metric = parse_metric(key)
    if not is_finite_number(limit):
        raise ValueError(f"{key} = {limit!r} is invalid; write a number, such as {key} = 100")
    return Objective(metric, "<=" if metric.better == "lower" else ">=", float(limit), source)


def merge_objectives(
    configured: Iterable[Objective], given: Iterable[Objective]
) -> list[Objective]:
    """Combine objectives; one given on the command line replaces a configured one on its metric."""
    given = list(given)
    overridden = {objective.metric.key for objective in given}
    kept = [objective for objective in configured if objective.metric.key not in overridden]
    return kept + given


def evaluate(
    run: Run, objectives: Iterable[Objective], allow_missing: bool
) -> list[ObjectiveResult]:
    """Check each objective against `run`."""
    return [_evaluate_one(run, objective, allow_missing) for objective in objectives]


def _evaluate_one(run: Run, objective: Objective, allow_missing: bool) -> ObjectiveResult:
    reading = read_metric(run, objective.metric.key)
    if reading.value is None:
        status: Status = "skipped" if allow_missing else "missing"
        return ObjectiveResult(objective, None, status, reading.reason)

    met = _OPERATORS[objective.operator](reading.value, objective.limit)
    return ObjectiveResult(objective, reading.value, "pass" if met else "fail")


def is_timing_metric(key: str) -> bool:
    """Return whether the metric `key` comes from the timing pass, which every metric but memray's does."""
    return key not in _MEMORY_PASS_METRICS


def timing_pass_failure(run: Run) -> str | None:
    """Describe why `run` has no timing measurements, or return None when its timing pass finished."""
    timing = next((result for result in run.passes if result.name == TIMING_PASS), None)
    if timing is None:
        return f"the {TIMING_PASS} (timing) pass did not run"
    if timing.status != "ok":
        detail = f": {timing.error}" if timing.error else ""
        return f"the {TIMING_PASS} (timing) pass {timing.status}{detail}"
    return None


def run_failures(run: Run, needs_timing: bool) -> list[str]:
    """List the reasons that `run` measured a failed target or nothing at all.

    A non-zero target exit status counts unless the run is partial, because
    aitax's own stop (--timeout, SIGINT, SIGTERM) sets that status, and partial
    runs are checked and flagged as such. A failed or missing timing pass counts
    only when `needs_timing`, because the timing metrics then read as zero or
    cover only what the failed pass measured.
    """
    failures = []
    if run.exit_code != 0 and not run.partial:
        failures.append(f"the target exited with status {run.exit_code}")
    timing_failure = timing_pass_failure(run)
    if timing_failure and needs_timing:
        failures.append(timing_failure)
    return failures


def check_run(
    run: Run,
    objectives: Iterable[Objective],
    allow_missing: bool,
    baseline: Run | None = None,
    settings: CompareSettings | None = None,
    allow_failed_run: bool = False,
) -> CheckResult:
    """Check `run` against the objectives and, given a baseline, for significant regressions.

    The timing pass counts when an objective is on a timing metric or a baseline
    is given, because the comparison reads timing metrics too.
    """
    objectives = list(objectives)
    comparison = None
    needs_timing = baseline is not None or any(
        is_timing_metric(objective.metric.key) for objective in objectives
    )
    failures = run_failures(run, needs_timing)
    if baseline is not None:
        comparison = compare_runs(baseline, run, settings or CompareSettings())
        baseline_failure = timing_pass_failure(baseline)
        if baseline_failure:
            failures.append(f"in the baseline, {baseline_failure}")
    return CheckResult(
        partial=run.partial,
        stop_reason=run.stop_reason,
        objectives=evaluate(run, objectives, allow_missing),
        comparison=comparison,
        run_failures=failures,
        allow_failed_run=allow_failed_run,
    )
