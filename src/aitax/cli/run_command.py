"""`aitax run`: profile a script or module in separate passes and write the report."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from aitax.analysis.line_selection import DEFAULT_LINE_FUNCTIONS
from aitax.capture.runner import DEFAULT_PASSES, PASS_NAMES
from aitax.capture.target import module_target, script_target
from aitax.errors import AitaxError
from aitax.model.io import RUN_FILE
from aitax.profile import REPORT_FILE, ProfileOptions, profile_target

HELP = """\
Run SCRIPT (or -m MODULE) as python would, once per pass, each pass in its own
process: a clean timing pass with only the markers on, a CPU pass under
pyinstrument, a line pass under line_profiler on the hottest user functions, and
a memory pass under memray. Write run.json, report.html and the profile files to
reports/<target>-<UTC time>/, or to -o DIR.
"""

PASS_TITLES = {
    "clean": "clean timing pass",
    "cpu": "CPU pass (stack sampler)",
    "line": "line pass (line_profiler)",
    "memory": "memory pass (memray)",
}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="profile a pipeline and write the report",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a module, as python -m does"
    )
    parser.add_argument("target", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS...]")

    _add_pass_options(parser.add_argument_group("passes"))
    _add_output_options(parser.add_argument_group("output"))
    parser.set_defaults(handler=run)


def _add_pass_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--passes",
        default=",".join(DEFAULT_PASSES),
        help=f"comma-separated passes to run, from {','.join(PASS_NAMES)} (default: all)",
    )
    group.add_argument(
        "--interval", type=float, default=0.001, metavar="SECONDS",
        help="CPU sampling interval in seconds (default: 0.001)",
    )  # fmt: skip
    group.add_argument(
        "--line-functions", type=int, default=DEFAULT_LINE_FUNCTIONS, metavar="N",
        help=f"number of hot user functions to line-profile (default: {DEFAULT_LINE_FUNCTIONS}; 0 for none)",
    )  # fmt: skip
    group.add_argument(
        "--line-profile", action="append", default=[], metavar="MODULE:QUALNAME",
        help="also line-profile this function, e.g. app.features:Builder.build (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--native", action="store_true",
        help="record native stacks in the memory pass, for memory held by C extensions",
    )  # fmt: skip
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="stop the run after this many seconds in all, and report what was measured (exit 143)",
    )  # fmt: skip


def _add_output_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("-o", "--output", metavar="DIR", help="report folder to write")
    group.add_argument(
        "--force", action="store_true",
        help="replace the report folder if it exists and contains only files that aitax writes",
    )  # fmt: skip
    group.add_argument(
        "--instance-cost-per-hour", type=float, metavar="DOLLARS",
        help="instance price for the cost per 1000 predictions (default: 0.0832, an AWS "
        "t3.large on demand in us-east-1; or instance_cost_per_hour in [tool.aitax])",
    )  # fmt: skip
    group.add_argument("--json", action="store_true", help="print run.json to standard output")
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
        help="print errors only",
    )  # fmt: skip
    group.add_argument(
        "-v", "--verbose", dest="verbosity", action="count",
        help="print more detail (repeat for debug output)",
    )  # fmt: skip


def parse_passes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PASS_NAMES]
    if unknown or not names:
        raise AitaxError(f"--passes {text!r} is invalid; choose from {','.join(PASS_NAMES)}")
    return [name for name in PASS_NAMES if name in names]


def _positive_seconds(option: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise AitaxError(f"{option} {value!r} is invalid; pass a positive number of seconds")


def _check_numbers(args: argparse.Namespace) -> None:
    _positive_seconds("--interval", args.interval)
    _positive_seconds("--timeout", args.timeout)
    cost = args.instance_cost_per_hour
    if cost is not None and not (math.isfinite(cost) and cost >= 0):
        raise AitaxError(f"--instance-cost-per-hour {cost!r} is invalid; pass a price in dollars")
    if args.line_functions < 0:
        raise AitaxError(f"--line-functions {args.line_functions} is invalid; pass 0 or more")
    for name in args.line_profile:
        module, _, qualname = name.partition(":")
        if not module or not qualname:
            raise AitaxError(
                f"--line-profile {name!r} is invalid; write MODULE:QUALNAME, e.g. app.features:build"
            )


def _output_dir(text: str | None) -> Path | None:
    # Path("") is Path("."), the working directory, so an empty -o is rejected as text.
    if text is None:
        return None
    if not text:
        raise AitaxError("-o '' is empty; name a folder for the report, such as -o rep")
    return Path(text)


def _check_pass_combination(passes: list[str], args: argparse.Namespace) -> None:
    if "line" in passes and "cpu" not in passes and not args.line_profile:
        raise AitaxError(
            "--passes without cpu leaves the line pass nothing to profile; add cpu, or name "
            "functions with --line-profile MODULE:QUALNAME"
        )


def build_options(args: argparse.Namespace) -> ProfileOptions:
    _check_numbers(args)
    out_dir = _output_dir(args.output)
    passes = parse_passes(args.passes)
    _check_pass_combination(passes, args)

    if args.module:
        target = module_target(args.module, list(args.target))
    elif args.target:
        target = script_target(args.target[0], list(args.target[1:]))
    else:
        raise AitaxError("no script given; run aitax run SCRIPT [ARGS...] or aitax run -m MODULE")

    return ProfileOptions(
        target=target,
        passes=passes,
        out_dir=out_dir,
        force=args.force,
        interval_s=args.interval,
        instance_cost_per_hour=args.instance_cost_per_hour,
        line_functions=args.line_functions,
        line_profile=tuple(args.line_profile),
        native_memory=args.native,
        timeout_s=args.timeout,
        stdout_to_stderr=args.json,
        command=["aitax", "run", *sys.argv[2:]] if sys.argv[1:2] == ["run"] else target.argv,
    )


class _PassProgress:
    """Show each pass as it runs, with its elapsed time, and a line when it ends.

    The first pass shares the terminal with the target's own output, so it gets a
    plain line. Later passes write their output to a log, so they get a live
    spinner with a clock when the console is a terminal.
    """

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.started: dict[str, float] = {}
        self.live: Progress | None = None

    def __call__(self, name: str, event: str) -> None:
        if self.quiet:
            return
        title = PASS_TITLES.get(name, name)
        if event == "start":
            self._start(name, title)
        elif event == "skipped":
            self.console.print(f"[bold]aitax[/]: {title} skipped")
        else:
            self._finish(name, title, event)

    def _start(self, name: str, title: str) -> None:
        first = not self.started
        self.started[name] = time.perf_counter()
        if first or not self.console.is_terminal:
            self.console.print(f"[bold]aitax[/]: running the {title}...")
            return
        self.live = Progress(
            SpinnerColumn(),
            TextColumn("[bold]aitax[/]: running the {task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.live.add_task(title, total=None)
        self.live.start()

    def _finish(self, name: str, title: str, event: str) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        elapsed = time.perf_counter() - self.started.get(name, time.perf_counter())
        mark = "[green]done[/]" if event == "ok" else "[red]failed[/]"
        self.console.print(f"[bold]aitax[/]: {title} {mark} in {elapsed:.1f} s")


def run(args: argparse.Namespace, console: Console) -> int:
    options = build_options(args)
    quiet = args.verbosity < 0
    result = profile_target(options, _PassProgress(console, quiet))

    if args.json:
        sys.stdout.write((result.report_dir / RUN_FILE).read_text(encoding="utf-8") + "\n")
    if not quiet:
        from aitax.report.terminal import print_summary

        print_summary(result.run, console)
        console.print(f"Wrote {result.report_dir / REPORT_FILE}")
        console.print(f"Open it with: aitax view {result.report_dir}", markup=False)
    if result.stop_exit_code is not None:
        return result.stop_exit_code
    return result.run.exit_code
