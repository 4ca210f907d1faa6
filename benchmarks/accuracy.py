"""Stage attribution accuracy: aitax's stage shares against hand timing of the example.

The reference is examples/scoring/hand_timed.py, which runs service.py without
a profiler and puts time.perf_counter() around each marked stage. aitax runs
service.py (markers) and service_unmarked.py (stages classified from the CPU
samples). The same hand timing serves both, because the two scripts run the same
steps in the same order.

aitax runs only the clean and CPU passes here: run.json's stage table is built
from those two alone, and the line and memory passes would only lengthen the
benchmark.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from overhead import REPORT_DIR_NAME, aitax_argv, report_check
from targets import EXAMPLE_DIR
from timing import Command, Measurement, median

HAND_KEY = "hand"
MARKED_KEY = "aitax:marked"
UNMARKED_KEY = "aitax:unmarked"
HAND_TIMED_SCRIPT = EXAMPLE_DIR / "hand_timed.py"
MARKED_SCRIPT = EXAMPLE_DIR / "service.py"
UNMARKED_SCRIPT = EXAMPLE_DIR / "service_unmarked.py"
# The row for the time outside every stage that the hand timing measures.
OUTSIDE_ROW = "outside these stages"
SHARE_PREFIX = "share:"
STAGE_PASSES = ("clean", "cpu")
# More requests than the overhead benchmark serves, so that the stages, not the
# imports and model loading, take most of the wall time.
FULL_REQUESTS = ("--requests", "200")
QUICK_REQUESTS = ("--requests", "5")


@dataclass(frozen=True)
class StageComparison:
    """One stage's median share of the wall time, from aitax and from hand timing."""

    stage: str
    aitax_share: float
    hand_share: float

    @property
    def difference_pp(self) -> float:
        """Absolute difference in percentage points."""
        return abs(self.aitax_share - self.hand_share) * 100


def missing_reason() -> str | None:
    for path in (HAND_TIMED_SCRIPT, MARKED_SCRIPT, UNMARKED_SCRIPT):
        if not path.is_file():
            return f"{path.name} not found in {EXAMPLE_DIR}"
    return None


def read_hand_shares(scratch: Path) -> dict[str, float]:
    result = json.loads((scratch / "hand.json").read_text(encoding="utf-8"))
    return {SHARE_PREFIX + name: float(entry["share"]) for name, entry in result["stages"].items()}


def read_aitax_shares(scratch: Path) -> dict[str, float]:
    """Sum the shares of run.json's stage entries by name, marked and automatic alike."""
    run = json.loads((scratch / REPORT_DIR_NAME / "run.json").read_text(encoding="utf-8"))
    shares: dict[str, float] = {}
    for entry in run["stages"]:
        key = SHARE_PREFIX + entry["name"]
        shares[key] = shares.get(key, 0.0) + float(entry["share"])
    return shares


def accuracy_commands(quick: bool) -> list[Command]:
    request_args = list(QUICK_REQUESTS if quick else FULL_REQUESTS)

    def hand_argv(scratch: Path) -> list[str]:
        output = str(scratch / "hand.json")
        return [sys.executable, str(HAND_TIMED_SCRIPT), "--json-out", output, "--", *request_args]

    passes = ",".join(STAGE_PASSES)
    return [
        Command(HAND_KEY, "hand_timed.py (service.py)", hand_argv, read_hand_shares),
        Command(
            MARKED_KEY,
            "aitax run service.py",
            aitax_argv(passes, MARKED_SCRIPT, request_args),
            read_aitax_shares,
            report_check(STAGE_PASSES),
        ),
        Command(
            UNMARKED_KEY,
            "aitax run service_unmarked.py",
            aitax_argv(passes, UNMARKED_SCRIPT, request_args),
            read_aitax_shares,
            report_check(STAGE_PASSES),
        ),
    ]


def compare_stages(aitax: Measurement, hand: Measurement) -> list[StageComparison]:
    """Compare median shares for each stage that the hand timing measured.

    The last row is the time outside those stages: one minus their summed
    median shares, on each side.
    """
    stage_names = sorted({key.removeprefix(SHARE_PREFIX) for extra in hand.extras for key in extra})
    rows = []
    for name in stage_names:
        key = SHARE_PREFIX + name
        aitax_share = median([extra.get(key, 0.0) for extra in aitax.extras])
        hand_share = median([extra.get(key, 0.0) for extra in hand.extras])
        rows.append(StageComparison(name, aitax_share, hand_share))

    rows.append(
        StageComparison(
            OUTSIDE_ROW,
            1.0 - sum(row.aitax_share for row in rows),
            1.0 - sum(row.hand_share for row in rows),
        )
    )
    return rows


def max_stage_difference_pp(rows: list[StageComparison]) -> float:
    """Return the largest difference over the named stages, leaving out the outside row."""
    return max(
        (row.difference_pp for row in rows if row.stage != OUTSIDE_ROW), default=float("nan")
    )
