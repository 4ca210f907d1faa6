"""Report cost: analysis and rendering time, and output sizes, against run length and function count.

The targets are generated scripts with N functions, each called M times, whose
bodies run a fixed pure-Python loop. One sweep raises M at a fixed N, for longer
runs with more samples. The other raises N at a fixed total number of calls, for
more distinct functions in about the same run length. The analysis and rendering
time of a run is the wall time of `aitax run` minus the wall times of its pass
processes that run.json records, so it also includes aitax's own start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from overhead import aitax_argv, read_report, report_check
from timing import Command, Measurement, median

# Iterations of the loop in each generated function's body.
LOOP_ITERATIONS = 2_000


@dataclass(frozen=True)
class SweepPoint:
    """One generated target: `functions` functions, each called `calls` times."""

    functions: int
    calls: int

    @property
    def key(self) -> str:
        return f"synthetic:{self.functions}x{self.calls}"


@dataclass(frozen=True)
class Sweep:
    name: str
    title: str
    variable: str
    points: tuple[SweepPoint, ...]


@dataclass(frozen=True)
class PointResult:
    """Medians over the runs of one sweep point."""

    point: SweepPoint
    run_length_s: float
    analysis_s: float
    run_json_bytes: float
    report_html_bytes: float
    failure: str | None


@dataclass(frozen=True)
class GrowthFit:
    """Least-squares fit of log(analysis time) against log(x): analysis grows as x ** exponent."""

    exponent: float
    points: int

    @property
    def linear_or_better(self) -> bool:
        # NOTE: 1.1 leaves room for timing noise on a shared machine; it is a judgement, not a test.
        return self.exponent <= 1.1


def sweeps(quick: bool) -> tuple[Sweep, Sweep]:
    length_calls: tuple[int, ...]
    function_counts: tuple[int, ...]
    if quick:
        length_functions = 10
        length_calls = (10, 40)
        function_counts = (5, 40)
        total_calls = 200
    else:
        length_functions = 50
        length_calls = (50, 100, 200, 400)
        function_counts = (25, 100, 400, 1600)
        total_calls = 6_400
    length = Sweep(
        "run-length",
        f"Run length ({length_functions} functions, more calls each)",
        "run length",
        tuple(SweepPoint(length_functions, calls) for calls in length_calls),
    )
    functions = Sweep(
        "functions",
        f"Number of functions ({total_calls} calls in all)",
        "functions",
        tuple(SweepPoint(count, max(1, total_calls // count)) for count in function_counts),
    )
    return length, functions


def generate_target(point: SweepPoint, folder: Path) -> Path:
    """Write a script that defines `point.functions` functions and calls each `point.calls` times."""
    lines = [
        f'"""Generated benchmark target: {point.functions} functions, {point.calls} calls each."""',
        "",
    ]
    for index in range(point.functions):
        lines += [
            f"def function_{index:05d}(seed):",
            "    total = seed",
            f"    for step in range({LOOP_ITERATIONS}):",
            "        total = (total * 31 + step) % 1_000_003",
            "    return total",
            "",
        ]
    lines += ["", "FUNCTIONS = ["]
    lines += [f"    function_{index:05d}," for index in range(point.functions)]
    lines += [
        "]",
        "",
        "",
        "def main():",
        "    checksum = 0",
        f"    for call in range({point.calls}):",
        "        for function in FUNCTIONS:",
        "            checksum ^= function(call)",
        "    print(checksum)",
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]
    path = folder / f"synthetic_{point.functions}x{point.calls}.py"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sweep_commands(sweep: Sweep, folder: Path, pass_names: tuple[str, ...]) -> list[Command]:
    commands = []
    for point in sweep.points:
        script = generate_target(point, folder)
        commands.append(
            Command(
                key=point.key,
                label=f"aitax run {script.name}",
                build_argv=aitax_argv(",".join(pass_names), script, []),
                collect=read_report,
                check=report_check(pass_names),
            )
        )
    return commands


def analysis_seconds(measurement: Measurement, pass_names: tuple[str, ...]) -> list[float]:
    """Per run, the command's wall time minus the wall times of its pass processes."""
    values = []
    for wall_s, extra in zip(measurement.walls_s, measurement.extras, strict=False):
        pass_walls = [extra.get(f"pass:{name}", math.nan) for name in pass_names]
        if math.isnan(wall_s) or any(math.isnan(value) for value in pass_walls):
            continue
        values.append(wall_s - sum(pass_walls))
    return values


def fit_growth(xs: list[float], ys: list[float]) -> GrowthFit | None:
    """Fit y = a * x ** exponent by least squares on logarithms; None with fewer than 2 points."""
    pairs = [
        (math.log(x), math.log(y))
        for x, y in zip(xs, ys, strict=True)
        if x > 0 and y > 0 and not math.isnan(x)
    ]
    if len(pairs) < 2:
        return None
    mean_x = sum(x for x, _ in pairs) / len(pairs)
    mean_y = sum(y for _, y in pairs) / len(pairs)
    spread = sum((x - mean_x) ** 2 for x, _ in pairs)
    if spread == 0:
        return None
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in pairs)
    return GrowthFit(covariance / spread, len(pairs))


def summarize_point(
    point: SweepPoint, measurement: Measurement, pass_names: tuple[str, ...]
) -> PointResult:
    """Take medians over the runs; the run length is the clean pass's wall time."""
    return PointResult(
        point=point,
        run_length_s=measurement.median_extra("pass:clean"),
        analysis_s=median(analysis_seconds(measurement, pass_names)),
        run_json_bytes=measurement.median_extra("run_json_bytes"),
        report_html_bytes=measurement.median_extra("report_html_bytes"),
        failure=measurement.failure,
    )


def sweep_variable(sweep: Sweep, result: PointResult) -> float:
    """Return the x of a sweep point: run length in seconds, or the number of functions."""
    if sweep.name == "run-length":
        return result.run_length_s
    return float(result.point.functions)


def fit_sweep(sweep: Sweep, results: list[PointResult]) -> GrowthFit | None:
    usable = [result for result in results if not math.isnan(result.analysis_s)]
    xs = [sweep_variable(sweep, result) for result in usable]
    return fit_growth(xs, [result.analysis_s for result in usable])
