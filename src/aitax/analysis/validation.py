"""Type checks of the run.json fields that `aitax compare` and `aitax check` read.

The loader builds the records without checking the type of each value, and
JSON admits NaN. A wrong value would otherwise surface as a TypeError deep in
the comparison, so these checks name the field instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from aitax.model.run import Run

Check = tuple[str, Any, Callable[[Any], bool], str]


def find_invalid_field(run: Run) -> str | None:
    """Describe the first field that has the wrong type or a non-finite number; None if all fit."""
    for name, value, is_valid, expected in _checks(run):
        if not is_valid(value):
            return f"{name} is {_shorten(repr(value))}, expected {expected}"
    return None


def is_finite_number(value: Any) -> bool:
    """Return whether `value` is an int or float, not a bool, that converts to a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        # An int too large for a float, which JSON and TOML both allow.
        return False


def _optional_number(value: Any) -> bool:
    return value is None or is_finite_number(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional_count(value: Any) -> bool:
    return value is None or _count(value)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _samples(value: Any) -> bool:
    return isinstance(value, list) and all(is_finite_number(item) for item in value)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


NUMBER = "a finite number"
OPTIONAL_NUMBER = "a finite number or null"
COUNT = "a count"
OPTIONAL_COUNT = "a count or null"
SAMPLES = "a list of finite numbers"
TEXT = "a string"


def _checks(run: Run) -> Iterator[Check]:
    yield from _run_checks(run)
    yield from _request_checks(run)
    for index, stage in enumerate(run.stages):
        prefix = f"stages[{index}]"
        yield f"{prefix}.name", stage.name, _text, TEXT
        yield f"{prefix}.total_s", stage.total_s, is_finite_number, NUMBER
        yield f"{prefix}.cpu_s", stage.cpu_s, _optional_number, OPTIONAL_NUMBER
        yield f"{prefix}.count", stage.count, _optional_count, OPTIONAL_COUNT
        for field in ("p50_ms", "p95_ms", "p99_ms"):
            yield f"{prefix}.{field}", getattr(stage, field), _optional_number, OPTIONAL_NUMBER
        yield f"{prefix}.durations_ms", stage.durations_ms, _samples, SAMPLES
    yield from _environment_checks(run)


def _run_checks(run: Run) -> Iterator[Check]:
    yield "target", run.target, _text, TEXT
    yield "argv", run.argv, _texts, "a list of strings"
    yield "wall_s", run.wall_s, is_finite_number, NUMBER
    yield "cpu_s", run.cpu_s, is_finite_number, NUMBER
    yield "peak_rss_bytes", run.peak_rss_bytes, _optional_number, OPTIONAL_NUMBER
    yield "partial", run.partial, _flag, "true or false"
    yield "stop_reason", run.stop_reason, _optional_text, "a string or null"
    if run.memory is not None:
        yield "memory.peak_bytes", run.memory.peak_bytes, is_finite_number, NUMBER
    cost = run.cost
    yield "cost.instance_cost_per_hour", cost.instance_cost_per_hour, is_finite_number, NUMBER
    yield "cost.per_1000_predictions", cost.per_1000_predictions, _optional_number, OPTIONAL_NUMBER
    yield "cost.basis", cost.basis, _text, TEXT


def _request_checks(run: Run) -> Iterator[Check]:
    requests = run.requests
    yield "requests.count", requests.count, _count, COUNT
    yield "requests.items", requests.items, _count, COUNT
    for field in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput_rps"):
        yield f"requests.{field}", getattr(requests, field), _optional_number, OPTIONAL_NUMBER
    yield (
        "requests.throughput_items_per_s",
        requests.throughput_items_per_s,
        _optional_number,
        OPTIONAL_NUMBER,
    )
    yield "requests.latencies_ms", requests.latencies_ms, _samples, SAMPLES


def _environment_checks(run: Run) -> Iterator[Check]:
    environment = run.environment
    for field in ("python", "platform", "cpu_model", "aitax_version"):
        yield f"environment.{field}", getattr(environment, field), _text, TEXT
    yield "environment.cpu_count", environment.cpu_count, _count, COUNT
    yield (
        "environment.packages",
        environment.packages,
        _text_map,
        "an object of version strings",
    )


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
