"""`aitax check`: a CI gate on a run's service-level objectives and regressions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from aitax.analysis.compare import CompareSettings
from aitax.analysis.metrics import RUN_METRICS, STAGE_FIELDS
from aitax.analysis.slo import (
    EXPRESSION_FORM,
    Objective,
    check_run,
    merge_objectives,
    parse_objective,
)
from aitax.cli.compare_command import (
    add_bootstrap_options,
    add_output_options,
    compare_settings,
    load_run_argument,
    warn_about_runs,
)
from aitax.config import load_config
from aitax.errors import EXIT_CHECK_FAILED, EXIT_OK, AitaxError
from aitax.report.comparison import check_json, print_check

logger = logging.getLogger(__name__)

DEFAULT_MAX_REGRESSION_PCT = 10.0


def _metric_lines() -> str:
    lines = [
        f"  {metric.key:<26}{metric.label} ({metric.unit}, {metric.better} is better)"
        for metric in RUN_METRICS.values()
    ]
    lines += [
        f"  stage.NAME.{field:<15}{description} ({unit}, lower is better)"
        for field, (_, unit, description) in STAGE_FIELDS.items()
    ]
    return "\n".join(lines)


HELP = f"""\
Check RUN, a report folder or a run.json that aitax run wrote, against
service-level objectives, and with --baseline against an earlier run. Exit with
status 0 when every objective is met and nothing regressed significantly, and
with status 1 otherwise.

Objectives come from --slo and from [tool.aitax.slo] in the pyproject.toml
nearest to the current folder. An --slo on a metric replaces the table's entry.
MiB is 2**20 bytes, and cost_per_1000 is in US dollars. The metrics:
{_metric_lines()}

A metric that RUN lacks, such as p99_ms when no requests were marked, fails its
objective unless --allow-missing is given. A run whose target exited with a
non-zero status fails the check, and so does a run whose clean (timing) pass
failed or did not run when an objective or --baseline reads timing metrics,
unless --allow-failed-run is given.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="check a run against objectives and a baseline, for CI",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="the run to check")
    parser.add_argument(
        "--slo", action="append", default=[], metavar="EXPR",
        help="an objective such as p99_ms<=120 or throughput_rps>=50 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-missing", action="store_true",
        help="skip objectives on metrics that the run lacks instead of failing them",
    )  # fmt: skip
    parser.add_argument(
        "--allow-failed-run", action="store_true",
        help="check a run whose target exited with a non-zero status or whose clean "
        "(timing) pass failed, instead of failing the check",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path, metavar="RUN",
        help="also fail on metrics that regressed significantly against this run",
    )  # fmt: skip
    parser.add_argument(
        "--max-regression", type=float, default=DEFAULT_MAX_REGRESSION_PCT, metavar="PCT",
        help="smallest relative change against --baseline, in percent, that counts as a "
        f"regression (default: {DEFAULT_MAX_REGRESSION_PCT:g})",
    )  # fmt: skip
    add_bootstrap_options(parser)
    add_output_options(parser)
    parser.set_defaults(handler=check)


def parse_slo_options(expressions: list[str]) -> list[Objective]:
    """Parse each --slo value; raise AitaxError (exit status 2) naming the invalid one."""
    objectives = []
    for text in expressions:
        try:
            objectives.append(parse_objective(text))
        except ValueError as error:
            raise AitaxError(
                f"--slo {text!r} is invalid: {error}; write {EXPRESSION_FORM}"
            ) from None
    return objectives


def check(args: argparse.Namespace, console: Console) -> int:
    given = parse_slo_options(args.slo)
    settings: CompareSettings = compare_settings("--max-regression", args.max_regression, args)
    configured = load_config(Path.cwd()).slo
    objectives = merge_objectives(configured, given)
    if not objectives and args.baseline is None:
        raise AitaxError(
            "nothing to check; pass --slo EXPR or --baseline RUN, or add a [tool.aitax.slo] "
            "table to pyproject.toml"
        )

    run = load_run_argument(args.run)
    baseline = load_run_argument(args.baseline) if args.baseline is not None else None
    result = check_run(
        run, objectives, args.allow_missing, baseline, settings, args.allow_failed_run
    )
    if baseline is not None and result.comparison is not None:
        warn_about_runs(baseline, run, result.comparison)
    logger.info("checked %d objectives on %s", len(objectives), args.run)

    if args.json:
        document = check_json(result, args.run, args.baseline)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if args.verbosity >= 0:
        print_check(result, console, args.run)
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED
