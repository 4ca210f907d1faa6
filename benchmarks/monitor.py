"""Monitor-mode cost: nanoseconds per stage enter/exit pair and per request.

Compares aitax.stage without a recorder (the production default) and with one,
against a prometheus_client Histogram.time() and an OpenTelemetry SDK span with
no exporter. Each case is a timeit loop whose iteration count is chosen to
last about --seconds (at least MIN_ITERATIONS iterations). The cases run in
rotating order within each repeat, and the cost is the median per-iteration time
minus the median of an empty loop of the same shape.

Run as a script, it prints the result as JSON, so that run.py can measure in a
fresh interpreter: python benchmarks/monitor.py --seconds 0.25 --repeat 7
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import statistics
import subprocess
import sys
import timeit
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Shapes of measurement: the column each case fills, and the empty loop it is compared with.
SHAPES: dict[str, str] = {
    "with": "pass",
    "decorated": "plain()",
    "request": "pass",
}
SHAPE_TITLES = {
    "with": "with block, ns per enter/exit pair",
    "decorated": "decorated call, ns per call",
    "request": "request of 4 stages, ns per request",
}
STAGE_NAMES = ("feature_fetch", "feature_compute", "inference", "logging")
MIN_ITERATIONS = 1_000


@dataclass(frozen=True)
class Implementation:
    """One way to time a stage: its setup, and its statements for each shape."""

    key: str
    label: str
    requires: str | None
    setup: str
    with_stmt: str
    decorate: str
    request_stmt: str


def _nested(open_expression: str, request_expression: str) -> str:
    """Build a request block around one block per stage, opened with `open_expression`."""
    lines = [f"with {request_expression}:"]
    for name in STAGE_NAMES:
        lines.append(f"    with {open_expression.format(name=name)}:")
        lines.append("        pass")
    return "\n".join(lines)


_AITAX_STMT = 'with stage("inference"):\n    pass'
_AITAX_REQUEST = _nested('stage("{name}")', "request()")
_PROMETHEUS_SETUP = """
from prometheus_client import CollectorRegistry, Histogram
registry = CollectorRegistry()
histogram = Histogram("stage_seconds", "Stage latency.", registry=registry)
request_seconds = Histogram("request_seconds", "Request latency.", registry=registry)
stage_histograms = {
    name: Histogram(name + "_seconds", "Stage latency.", registry=registry)
    for name in ("feature_fetch", "feature_compute", "inference", "logging")
}
"""
_OTEL_SETUP = """
from opentelemetry.sdk.trace import TracerProvider
tracer = TracerProvider().get_tracer("aitax-benchmarks")
"""

IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(
        key="aitax-off",
        label="aitax.stage, no recorder (production default)",
        requires="aitax",
        setup="from aitax import request, stage\nfrom aitax.markers import install\ninstall(None)",
        with_stmt=_AITAX_STMT,
        decorate='stage("inference")(plain)',
        request_stmt=_AITAX_REQUEST,
    ),
    Implementation(
        key="aitax-recorder",
        label="aitax.stage, Recorder installed",
        requires="aitax",
        setup=(
            "from aitax import request, stage\n"
            "from aitax.markers import Recorder, install\n"
            "install(Recorder())"
        ),
        with_stmt=_AITAX_STMT,
        decorate='stage("inference")(plain)',
        request_stmt=_AITAX_REQUEST,
    ),
    Implementation(
        key="prometheus",
        label="prometheus_client Histogram.time()",
        requires="prometheus_client",
        setup=_PROMETHEUS_SETUP,
        with_stmt="with histogram.time():\n    pass",
        decorate="histogram.time()(plain)",
        request_stmt=_nested('stage_histograms["{name}"].time()', "request_seconds.time()"),
    ),
    Implementation(
        key="opentelemetry",
        label="OpenTelemetry SDK span, no exporter",
        requires="opentelemetry.sdk",
        setup=_OTEL_SETUP,
        with_stmt='with tracer.start_as_current_span("inference"):\n    pass',
        decorate='tracer.start_as_current_span("inference")(plain)',
        request_stmt=_nested(
            'tracer.start_as_current_span("{name}")', 'tracer.start_as_current_span("request")'
        ),
    ),
)


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _timers(implementation: Implementation) -> dict[str, timeit.Timer]:
    """Build the implementation's timer for each shape; every timeit() call reruns the setup."""
    setup = "def plain():\n    pass\n" + implementation.setup
    decorated_setup = setup + f"\ndecorated = {implementation.decorate}"
    return {
        "with": timeit.Timer(implementation.with_stmt, setup),
        "decorated": timeit.Timer("decorated()", decorated_setup),
        "request": timeit.Timer(implementation.request_stmt, setup),
    }


def _baselines() -> dict[str, timeit.Timer]:
    setup = "def plain():\n    pass"
    return {f"baseline:{shape}": timeit.Timer(stmt, setup) for shape, stmt in SHAPES.items()}


def measure(seconds: float, repeat: int) -> dict[str, Any]:
    """Time every available case; return per-case costs in ns and the unavailable ones."""
    timers = _baselines()
    unavailable: dict[str, str] = {}
    for implementation in IMPLEMENTATIONS:
        if implementation.requires and not _module_available(implementation.requires):
            unavailable[implementation.key] = f"not installed: no module {implementation.requires}"
            continue
        for shape, timer in _timers(implementation).items():
            timers[f"{implementation.key}:{shape}"] = timer

    iterations = {key: _calibrate(timer, seconds) for key, timer in timers.items()}
    samples_ns = _run_rotating(timers, iterations, repeat)
    return {
        "costs_ns": _subtract_baselines(samples_ns),
        "iterations": iterations,
        "unavailable": unavailable,
    }


def _calibrate(timer: timeit.Timer, seconds: float) -> int:
    """Return the iteration count that makes one timing last about `seconds`."""
    per_iteration_s = timer.timeit(MIN_ITERATIONS) / MIN_ITERATIONS
    return max(MIN_ITERATIONS, round(seconds / per_iteration_s))


def _run_rotating(
    timers: Mapping[str, timeit.Timer], iterations: Mapping[str, int], repeat: int
) -> dict[str, list[float]]:
    """Run each timer once per repeat, rotating the order; return ns per iteration."""
    keys = list(timers)
    samples: dict[str, list[float]] = {key: [] for key in keys}
    for repeat_index in range(repeat):
        shift = repeat_index % len(keys)
        for key in [*keys[shift:], *keys[:shift]]:
            elapsed = timers[key].timeit(iterations[key])
            samples[key].append(elapsed * 1e9 / iterations[key])
    return samples


def _subtract_baselines(samples_ns: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    costs: dict[str, dict[str, float]] = {}
    for key, values in samples_ns.items():
        if key.startswith("baseline:"):
            continue
        shape = key.rsplit(":", 1)[1]
        baseline_ns = statistics.median(samples_ns[f"baseline:{shape}"])
        costs[key] = {
            "median_ns": statistics.median(values) - baseline_ns,
            "min_ns": min(values) - baseline_ns,
            "max_ns": max(values) - baseline_ns,
        }
    return costs


def measure_in_subprocess(
    seconds: float, repeat: int, env: Mapping[str, str], timeout_s: float
) -> tuple[dict[str, Any] | None, str | None]:
    """Run this module in a fresh interpreter; return its result, or None and a failure message."""
    script = str(Path(__file__).resolve())
    argv = [sys.executable, script, "--seconds", str(seconds), "--repeat", str(repeat)]
    try:
        completed = subprocess.run(
            argv, env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s:.0f} s"

    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"exit status {completed.returncode}: {last_line}"
    return json.loads(completed.stdout), None


def cost_ns(result: Mapping[str, Any], implementation: str, shape: str) -> float:
    entry = result["costs_ns"].get(f"{implementation}:{shape}")
    return math.nan if entry is None else float(entry["median_ns"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=0.25, help="target duration of one timing, in seconds"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timings per case")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1:
        parser.error(f"--seconds {args.seconds} and --repeat {args.repeat} must both be positive")

    json.dump(measure(args.seconds, args.repeat), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
