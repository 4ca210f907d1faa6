"""Run commands side by side in alternating order and time each run's wall clock.

Every command of a comparison runs once per round, and the order rotates from
round to round, so slow drift of a shared machine reaches all commands alike.
Ratios are taken between runs of the same round and then summarized by their
median, which is robust to the odd run that a noisy neighbour slows down.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# Lines of a failed command's output quoted in the failure message.
FAILURE_TAIL_LINES = 3


@dataclass(frozen=True)
class Command:
    """One command to time.

    `build_argv` receives a fresh, empty scratch folder for the run, where the
    command may write its output files. `check` reads that folder and the exit
    status and returns a failure message, or None for a successful run. Without
    `check`, any non-zero exit status is a failure. `collect` reads
    extra numbers from the folder after a successful run (a pass's wall time
    from run.json, say). Both run outside the timed span. `unavailable` is
    the reason the command cannot run here (a tool that is not installed), so
    that it is reported instead of dropped.
    """

    key: str
    label: str
    build_argv: Callable[[Path], list[str]]
    collect: Callable[[Path], dict[str, float]] | None = None
    check: Callable[[Path, int], str | None] | None = None
    unavailable: str | None = None


@dataclass
class Measurement:
    """Wall times of one command, one entry per round; NaN for a round it did not run."""

    key: str
    label: str
    walls_s: list[float] = field(default_factory=list)
    extras: list[dict[str, float]] = field(default_factory=list)
    failure: str | None = None
    notes: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.succeeded_runs > 0

    @property
    def succeeded_runs(self) -> int:
        return sum(not math.isnan(wall) for wall in self.walls_s)

    def median_wall_s(self) -> float:
        return median([wall for wall in self.walls_s if not math.isnan(wall)])

    def median_extra(self, name: str) -> float:
        return median([extra[name] for extra in self.extras if name in extra])


@dataclass(frozen=True)
class Outcome:
    """End state of one run of a command: wall time, exit status, error and last output."""

    wall_s: float
    returncode: int | None
    error: str | None
    output_tail: str


@dataclass(frozen=True)
class RatioSummary:
    """Per-round ratios of a command's wall time over a baseline's."""

    median: float
    low: float
    high: float
    rounds: int


def median(values: Sequence[float]) -> float:
    """Return the median, or NaN for an empty sequence."""
    return statistics.median(values) if values else math.nan


def rotated(items: Sequence[Command], shift: int) -> list[Command]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def run_alternating(
    commands: Sequence[Command],
    runs: int,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    warmup: Command | None = None,
) -> dict[str, Measurement]:
    """Run every command `runs` times, rotating the order each round.

    A command that fails once is not run again: its later rounds stay NaN and
    its failure message is kept. `warmup` runs once first and is not timed, so
    that the first timed run does not pay for cold file caches alone.
    """
    results = {command.key: Measurement(command.key, command.label) for command in commands}
    for command in commands:
        if command.unavailable is not None:
            results[command.key].failure = command.unavailable

    if warmup is not None:
        _time_once(warmup, cwd, env, timeout_s)

    for round_index in range(runs):
        for command in rotated(commands, round_index):
            measurement = results[command.key]
            if measurement.failure is not None:
                measurement.walls_s.append(math.nan)
                continue
            _run_round(command, measurement, cwd, env, timeout_s)
            logger.info(
                "round %d/%d: %s: %.2f s",
                round_index + 1,
                runs,
                command.label,
                measurement.walls_s[-1],
            )
    return results


def _run_round(
    command: Command, measurement: Measurement, cwd: Path, env: Mapping[str, str], timeout_s: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="aitax-bench-") as scratch_name:
        scratch = Path(scratch_name)
        outcome = _time_once(command, cwd, env, timeout_s, scratch)
        failure = _judge(command, outcome, scratch, measurement)
        if failure is not None:
            logger.warning("%s failed: %s", command.label, failure)
            measurement.failure = failure
            measurement.walls_s.append(math.nan)
            return

        measurement.walls_s.append(outcome.wall_s)
        if command.collect is not None:
            measurement.extras.append(_collect(command, scratch))


def _judge(
    command: Command, outcome: Outcome, scratch: Path, measurement: Measurement
) -> str | None:
    """Return the failure message of a run, or None when it succeeded."""
    if outcome.error is not None:
        return outcome.error
    assert outcome.returncode is not None
    if command.check is None:
        if outcome.returncode != 0:
            return f"exit status {outcome.returncode}: {outcome.output_tail}"
        return None

    failure = command.check(scratch, outcome.returncode)
    if failure is None and outcome.returncode != 0:
        measurement.notes.add(f"exit status {outcome.returncode}, but its output shows success")
    return failure


def _collect(command: Command, scratch: Path) -> dict[str, float]:
    assert command.collect is not None
    try:
        return command.collect(scratch)
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("could not read the output of %s: %s", command.label, error)
        return {}


def _time_once(
    command: Command,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    scratch: Path | None = None,
) -> Outcome:
    """Run the command once, with its output in a log file in the scratch folder."""
    own_scratch = scratch is None
    if scratch is None:
        scratch = Path(tempfile.mkdtemp(prefix="aitax-bench-"))
    argv = command.build_argv(scratch)
    log_path = scratch / "command.log"

    try:
        with log_path.open("wb") as log:
            started = time.perf_counter()
            completed = subprocess.run(
                argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
            )  # fmt: skip
            wall_s = time.perf_counter() - started
        return Outcome(wall_s, completed.returncode, None, _tail(log_path))
    except subprocess.TimeoutExpired:
        return Outcome(math.nan, None, f"timed out after {timeout_s:.0f} s", _tail(log_path))
    except OSError as error:
        return Outcome(math.nan, None, f"could not start {argv[0]}: {error.strerror}", "")
    finally:
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " / ".join(line.strip() for line in lines[-FAILURE_TAIL_LINES:]) or "(no output)"


def ratio_summary(
    measurement: Measurement, baseline: Measurement, numerator: Callable[[int], float] | None = None
) -> RatioSummary | None:
    """Summarize the ratios of `measurement` over `baseline`, round by round.

    `numerator` replaces the command's wall time of round i (a pass's own wall
    time from run.json, say). Returns None when no round has both values.
    """
    ratios = []
    for index, base_s in enumerate(baseline.walls_s):
        if index >= len(measurement.walls_s):
            break
        value_s = measurement.walls_s[index] if numerator is None else numerator(index)
        if math.isnan(value_s) or math.isnan(base_s) or base_s <= 0:
            continue
        ratios.append(value_s / base_s)
    if not ratios:
        return None
    return RatioSummary(median(ratios), min(ratios), max(ratios), len(ratios))
