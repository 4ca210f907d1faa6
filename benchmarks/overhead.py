"""Commands that time aitax itself: each pass alone, and the whole `aitax run`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from timing import Command

BARE_KEY = "bare"
FULL_RUN_KEY = "aitax:all"
REPORT_DIR_NAME = "report"
# Passes that aitax runs only after others, and those others.
PASSES_NEEDED: dict[str, tuple[str, ...]] = {"line": ("cpu",)}


def pass_names() -> tuple[str, ...]:
    """Read the pass names from the installed aitax, so that new passes are benchmarked too."""
    from aitax.capture.runner import PASS_NAMES

    return tuple(PASS_NAMES)


def bare_command(script: Path, args: list[str]) -> Command:
    return Command(
        key=BARE_KEY,
        label="python SCRIPT",
        build_argv=lambda scratch: [sys.executable, str(script), *args],
    )


def aitax_argv(passes: str, script: Path, args: list[str]) -> Callable[[Path], list[str]]:
    """Build an `aitax run` command line that writes its report into the scratch folder."""

    def build(scratch: Path) -> list[str]:
        report_dir = scratch / REPORT_DIR_NAME
        return [
            sys.executable, "-m", "aitax", "run", "--passes", passes, "-q", "--force",
            "-o", str(report_dir), str(script), *args,
        ]  # fmt: skip

    return build


def read_report(scratch: Path) -> dict[str, float]:
    """Read each pass's wall time and the sizes of run.json and report.html.

    Keys are `pass:NAME` for the pass processes' wall seconds, as run.json
    records them, and `run_json_bytes` and `report_html_bytes`.
    """
    report_dir = scratch / REPORT_DIR_NAME
    run_path = report_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8"))

    numbers: dict[str, float] = {}
    for entry in run.get("passes", []):
        if entry.get("status") == "ok":
            numbers[f"pass:{entry['name']}"] = float(entry["wall_s"])
    numbers["run_json_bytes"] = float(run_path.stat().st_size)
    html_path = report_dir / "report.html"
    if html_path.is_file():
        numbers["report_html_bytes"] = float(html_path.stat().st_size)
    return numbers


def report_check(passes: tuple[str, ...]) -> Callable[[Path, int], str | None]:
    """Judge an aitax run by its run.json: every requested pass must have status ok.

    aitax exits with the target's exit status, which only the clean pass
    measures, so a run without the clean pass may exit 1 although every pass
    succeeded.
    """

    def check(scratch: Path, returncode: int) -> str | None:
        run_path = scratch / REPORT_DIR_NAME / "run.json"
        if not run_path.is_file():
            return f"exit status {returncode} and no run.json written"
        run = json.loads(run_path.read_text(encoding="utf-8"))
        entries = {entry["name"]: entry for entry in run.get("passes", [])}
        for name in passes:
            entry = entries.get(name)
            if entry is None:
                return f"run.json lists no {name} pass"
            if entry.get("status") != "ok":
                return f"{name} pass {entry.get('status')}: {entry.get('error')}"
        return None

    return check


def aitax_commands(script: Path, args: list[str], names: tuple[str, ...]) -> list[Command]:
    """Build one command per pass, run alone, and one for the whole `aitax run` with every pass.

    The whole run names every pass explicitly, so that it stays the whole run if
    aitax's default pass list ever leaves one out.
    """
    commands = []
    for name in names:
        # The line pass profiles the functions that the CPU pass found hot, so it
        # runs after one; its own time still comes from run.json.
        passes = ",".join((*PASSES_NEEDED.get(name, ()), name))
        commands.append(
            Command(
                key=f"aitax:{name}",
                label=f"aitax run --passes {passes}",
                build_argv=aitax_argv(passes, script, args),
                collect=read_report,
                check=report_check((name,)),
            )
        )
    commands.append(
        Command(
            key=FULL_RUN_KEY,
            label=f"aitax run --passes {','.join(names)}",
            build_argv=aitax_argv(",".join(names), script, args),
            collect=read_report,
            check=report_check(names),
        )
    )
    return commands
