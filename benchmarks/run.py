"""Run aitax's benchmarks and write the results page.

Everything is measured on one machine in one run, in five families. The first
two time each aitax pass, the whole `aitax run` and other profilers on the same
pipelines. The others measure stage attribution accuracy against hand timing,
the cost of stage markers in monitor mode, and the cost of analysis and
rendering as runs grow.

Example: python benchmarks/run.py --quick --out /tmp/benchmarks.md
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import shlex
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import accuracy
import monitor
import overhead
import page
import profilers
import report_cost
import targets
from machine import describe_machine
from results import (
    AccuracyResult,
    BenchmarkResults,
    MonitorResult,
    PipelineResult,
    ReportCostResult,
    SweepResult,
)
from timing import Command, Measurement, run_alternating

logger = logging.getLogger(__name__)

FAMILIES = ("overhead", "profilers", "accuracy", "monitor", "report-cost")
DEFAULT_OUT = targets.REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_RUNS = 5
QUICK_RUNS = 1


@dataclass(frozen=True)
class Options:
    quick: bool
    runs: int
    out: Path
    pipelines: tuple[str, ...]
    skip: frozenset[str]
    timeout_s: float
    save_results: Path | None
    render_from: Path | None


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true",
        help=f"tiny sizes and {QUICK_RUNS} run per command: checks that everything runs, measures nothing",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=int,
        help=f"timed runs per command (default {DEFAULT_RUNS}, or {QUICK_RUNS} with --quick)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown page to write")
    parser.add_argument(
        "--pipelines", default=",".join(targets.PIPELINES),
        help=f"comma-separated pipelines to time, from {','.join(targets.PIPELINES)} (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--skip", default="",
        help=f"comma-separated measurement families to leave out, from {','.join(FAMILIES)}",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds one command may run (default 1200)"
    )
    parser.add_argument(
        "--save-results", type=Path, metavar="FILE",
        help="also pickle the measured results to FILE, for --render-from",
    )  # fmt: skip
    parser.add_argument(
        "--render-from", type=Path, metavar="FILE",
        help="measure nothing; render the page from results that --save-results pickled "
        "(load only files you wrote yourself: unpickling runs code)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log every timed run")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _validate(parser, args)


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Options:
    runs = args.runs
    if runs is None:
        runs = QUICK_RUNS if args.quick else DEFAULT_RUNS
    if runs < 1:
        parser.error(f"--runs {runs} is invalid; pass a positive count")

    pipelines = tuple(name.strip() for name in args.pipelines.split(",") if name.strip())
    unknown = [name for name in pipelines if name not in targets.PIPELINES]
    if unknown:
        parser.error(
            f"--pipelines: unknown {','.join(unknown)}; choose from {','.join(targets.PIPELINES)}"
        )

    skip = frozenset(name.strip() for name in args.skip.split(",") if name.strip())
    if skip - set(FAMILIES):
        parser.error(
            f"--skip: unknown {','.join(sorted(skip - set(FAMILIES)))}; choose from {','.join(FAMILIES)}"
        )

    return Options(
        args.quick,
        runs,
        args.out,
        pipelines,
        skip,
        args.timeout,
        args.save_results,
        args.render_from,
    )


def time_pipeline(
    pipeline: targets.Pipeline, options: Options, env: dict[str, str], pass_names: tuple[str, ...]
) -> PipelineResult:
    """Time the bare run, aitax and the other profilers on one pipeline, side by side."""
    result = PipelineResult(pipeline)
    result.skipped = pipeline.missing_reason() or targets.prepare(pipeline, env)
    if result.skipped is not None:
        logger.warning("skipping %s: %s", pipeline.name, result.skipped)
        return result

    args = pipeline.args(options.quick)
    result.args = args
    bare = overhead.bare_command(pipeline.script, args)
    commands: list[Command] = [bare]
    if "overhead" not in options.skip:
        commands += overhead.aitax_commands(pipeline.script, args, pass_names)
    if "profilers" not in options.skip:
        commands += profilers.profiler_commands(pipeline.script, args)

    logger.info("timing %s: %d commands, %d runs each", pipeline.name, len(commands), options.runs)
    result.measurements = run_alternating(
        commands, options.runs, targets.REPO_ROOT, env, options.timeout_s, warmup=bare
    )
    return result


def measure_accuracy(options: Options, env: dict[str, str]) -> AccuracyResult:
    skipped = _accuracy_skip_reason(options, env)
    if skipped is not None:
        return AccuracyResult(skipped=skipped)

    commands = accuracy.accuracy_commands(options.quick)
    measurements = run_alternating(
        commands, options.runs, targets.REPO_ROOT, env, options.timeout_s
    )

    hand = measurements[accuracy.HAND_KEY]
    result = AccuracyResult(measurements=measurements)
    if hand.ok and measurements[accuracy.MARKED_KEY].ok:
        result.marked = accuracy.compare_stages(measurements[accuracy.MARKED_KEY], hand)
    if hand.ok and measurements[accuracy.UNMARKED_KEY].ok:
        result.unmarked = accuracy.compare_stages(measurements[accuracy.UNMARKED_KEY], hand)
    return result


def _accuracy_skip_reason(options: Options, env: dict[str, str]) -> str | None:
    if "accuracy" in options.skip:
        return "left out with --skip accuracy"
    if targets.EXAMPLE.name not in options.pipelines:
        return "the example pipeline was not selected with --pipelines"
    return (
        targets.EXAMPLE.missing_reason()
        or accuracy.missing_reason()
        or targets.prepare(targets.EXAMPLE, env)
    )


def measure_monitor(options: Options, env: dict[str, str]) -> MonitorResult:
    if "monitor" in options.skip:
        return MonitorResult(skipped="left out with --skip monitor")

    seconds, repeat = (0.005, 3) if options.quick else (0.25, max(7, options.runs))
    costs, failure = monitor.measure_in_subprocess(seconds, repeat, env, options.timeout_s)
    return MonitorResult(costs=costs, skipped=failure)


def measure_report_cost(
    options: Options, env: dict[str, str], pass_names: tuple[str, ...]
) -> ReportCostResult:
    if "report-cost" in options.skip:
        return ReportCostResult(skipped="left out with --skip report-cost")

    result = ReportCostResult()
    with tempfile.TemporaryDirectory(prefix="aitax-bench-targets-") as folder:
        for sweep in report_cost.sweeps(options.quick):
            commands = report_cost.sweep_commands(sweep, Path(folder), pass_names)
            measurements = run_alternating(
                commands, options.runs, targets.REPO_ROOT, env, options.timeout_s
            )
            result.sweeps.append(_summarize_sweep(sweep, measurements, pass_names))
    return result


def _summarize_sweep(
    sweep: report_cost.Sweep, measurements: dict[str, Measurement], pass_names: tuple[str, ...]
) -> SweepResult:
    points = [
        report_cost.summarize_point(point, measurements[point.key], pass_names)
        for point in sweep.points
    ]
    return SweepResult(sweep, points, report_cost.fit_sweep(sweep, points))


def run_benchmarks(options: Options, command: str) -> BenchmarkResults:
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    env = targets.benchmark_env()
    pass_names = overhead.pass_names()
    logger.info("aitax passes: %s", ",".join(pass_names))

    pipeline_results = [
        time_pipeline(targets.PIPELINES[name], options, env, pass_names)
        for name in options.pipelines
    ]
    accuracy_result = measure_accuracy(options, env)
    monitor_result = measure_monitor(options, env)
    report_cost_result = measure_report_cost(options, env, pass_names)

    return BenchmarkResults(
        command=command,
        quick=options.quick,
        runs=options.runs,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        machine=describe_machine(targets.REPO_ROOT),
        load_before=load_before,
        load_after=os.getloadavg(),
        pass_names=pass_names,
        pipelines=pipeline_results,
        accuracy=accuracy_result,
        monitor=monitor_result,
        report_cost=report_cost_result,
    )


def write_page(path: Path, text: str) -> None:
    """Write the page through a temporary file, so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def load_results(path: Path) -> BenchmarkResults:
    try:
        results = pickle.loads(path.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError) as error:
        raise SystemExit(
            f"error: cannot read results from {path}: {error}; pass a file written by --save-results"
        ) from error
    if not isinstance(results, BenchmarkResults):
        raise SystemExit(
            f"error: {path} contains no benchmark results; pass a file written by --save-results"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    options = parse_options(arguments)
    command = shlex.join(["python", "benchmarks/run.py", *arguments])

    if options.render_from is not None:
        results = load_results(options.render_from)
    else:
        results = run_benchmarks(options, command)
    if options.save_results is not None:
        options.save_results.write_bytes(pickle.dumps(results))

    write_page(options.out, page.render(results))
    print(f"Wrote {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
