"""`aitax compare`: judge each metric's change between two runs against noise."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from aitax.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, BootstrapSettings
from aitax.analysis.compare import DEFAULT_THRESHOLD_PCT, CompareSettings, Comparison, compare_runs
from aitax.analysis.slo import timing_pass_failure
from aitax.analysis.validation import find_invalid_field
from aitax.errors import EXIT_CHECK_FAILED, EXIT_OK, AitaxError, ReportLoadError
from aitax.model.io import RUN_FILE, load_run
from aitax.model.run import Run
from aitax.report._format import visible_text
from aitax.report.comparison import comparison_json, print_comparison

logger = logging.getLogger(__name__)

HELP = """\
Compare CURRENT with BASELINE, each a report folder or a run.json that aitax run
wrote: request latency p50/p95/p99 and mean, throughput, wall and CPU time, peak
RSS, memray's peak, cost per 1000 predictions, and each stage's total time and
per-call p50/p95.

Each change is a regression, an improvement, or within noise. For latencies and
stage durations, a change counts only when the bootstrap confidence interval of
the change excludes zero and the change exceeds --threshold. Metrics with one
value per run (wall time, throughput, memory, cost) are judged by the threshold
alone. The resampling is seeded, so the same runs always give the same result.
"""

# Fewer resamples give an interval whose ends move from seed to seed.
MIN_RESAMPLES = 100


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare two runs and judge each change against noise",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("baseline", type=Path, metavar="BASELINE", help="the run to compare with")
    parser.add_argument("current", type=Path, metavar="CURRENT", help="the run to judge")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD_PCT, metavar="PCT",
        help=f"smallest relative change, in percent, that counts (default: {DEFAULT_THRESHOLD_PCT:g})",
    )  # fmt: skip
    add_bootstrap_options(parser)
    parser.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit with status 1 when any metric regressed significantly",
    )  # fmt: skip
    add_output_options(parser)
    parser.set_defaults(handler=compare)


def add_bootstrap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="PATTERN",
        help="leave metrics whose key matches this shell-style pattern, such as cpu_s or "
        "'stage.other.*', out of the comparison (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--confidence", type=float, default=DEFAULT_CONFIDENCE * 100, metavar="PCT",
        help=f"confidence level of the bootstrap interval, in percent (default: {DEFAULT_CONFIDENCE * 100:g})",
    )  # fmt: skip
    parser.add_argument(
        "--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N",
        help=f"bootstrap resamples per run (default: {DEFAULT_RESAMPLES}, at least {MIN_RESAMPLES})",
    )  # fmt: skip


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON to standard output"
    )
    parser.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
        help="print errors only",
    )  # fmt: skip
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="count",
        help="print more detail (repeat for debug output)",
    )  # fmt: skip


def compare_settings(
    option: str, threshold_pct: float, args: argparse.Namespace
) -> CompareSettings:
    """Validate the threshold, given as `option`, and the bootstrap options."""
    if not (math.isfinite(threshold_pct) and threshold_pct >= 0):
        raise AitaxError(f"{option} {threshold_pct!r} is invalid; pass a percentage of 0 or more")
    if not (math.isfinite(args.confidence) and 0 < args.confidence < 100):
        raise AitaxError(
            f"--confidence {args.confidence!r} is invalid; pass a percentage between 0 and 100, "
            "such as 95"
        )
    if args.resamples < MIN_RESAMPLES:
        raise AitaxError(f"--resamples {args.resamples} is invalid; pass {MIN_RESAMPLES} or more")
    bootstrap = BootstrapSettings(resamples=args.resamples, confidence=args.confidence / 100)
    return CompareSettings(threshold_pct, bootstrap, tuple(args.ignore))


def load_run_argument(path: Path) -> Run:
    """Load the run.json at `path`, or in the report folder `path`; raise ReportLoadError."""
    file = path / RUN_FILE if path.is_dir() else path
    run = load_run(file)
    problem = find_invalid_field(run)
    if problem is not None:
        raise ReportLoadError(f"{file} is invalid ({problem}); rerun aitax run to write it again")
    return run


def warn_about_runs(baseline: Run, current: Run, comparison: Comparison) -> None:
    """Warn when the runs differ in target or environment, or when one of them is partial."""
    if comparison.differences:
        listed = visible_text(
            "; ".join(
                f"{item.name} {item.baseline} vs {item.current}" for item in comparison.differences
            )
        )
        logger.warning(
            "the runs differ in %s. Part of each change may come from these differences, "
            "so compare runs of one target on one machine and software; -q hides this warning",
            listed,
        )
    for name, run in (("baseline", baseline), ("current", current)):
        failure = timing_pass_failure(run)
        if failure is not None:
            logger.warning(
                "in the %s run %s, so its latency, throughput and time metrics are not "
                "measurements and their changes mean nothing",
                name,
                visible_text(failure),
            )
        if run.partial:
            logger.warning(
                "the %s run is partial (%s); its values cover what was measured until the stop",
                name,
                run.stop_reason or "stopped before it finished",
            )


def compare(args: argparse.Namespace, console: Console) -> int:
    settings = compare_settings("--threshold", args.threshold, args)
    baseline = load_run_argument(args.baseline)
    current = load_run_argument(args.current)

    comparison = compare_runs(baseline, current, settings)
    warn_about_runs(baseline, current, comparison)
    if args.json:
        document = comparison_json(comparison, args.baseline, args.current)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if args.verbosity >= 0:
        print_comparison(comparison, console, args.baseline, args.current)

    if args.fail_on_regression and comparison.with_verdict("regression"):
        return EXIT_CHECK_FAILED
    return EXIT_OK
