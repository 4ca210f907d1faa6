"""The terminal summary prints every run note, and no empty Stages table."""

from __future__ import annotations

import io

from rich.console import Console

from aitax.model.run import Run
from aitax.report import print_summary
from report_fixtures import make_run

MISMATCH_NOTE = (
    "The passes ran different programs: the clean pass and the cpu pass read different "
    "versions of pipeline.py, so the stage split and the hotspots may not match the timings."
)
CHILDREN_NOTE = "Child processes used 4.20 s of CPU time, which the passes do not profile."


def summary_text(run: Run, width: int = 80) -> str:
    console = Console(record=True, width=width, no_color=True, file=io.StringIO())
    print_summary(run, console)
    return console.export_text()


def test_summary_prints_every_note() -> None:
    output = summary_text(make_run(notes=[MISMATCH_NOTE, CHILDREN_NOTE]))

    assert "\nNotes\n" in output
    flattened = " ".join(output.split())
    assert MISMATCH_NOTE in flattened
    assert CHILDREN_NOTE in flattened


def test_notes_follow_findings() -> None:
    output = summary_text(make_run(notes=[CHILDREN_NOTE]), width=200)

    assert output.index("Top findings") < output.index("Notes") < output.index("Child processes")


def test_long_note_wraps_to_console_width() -> None:
    output = summary_text(make_run(notes=[MISMATCH_NOTE]), width=60)

    note_lines = output[output.index("\nNotes\n") :].strip().splitlines()[1:]
    assert len(note_lines) > 1
    assert all(len(line) <= 60 for line in note_lines)


def test_note_control_characters_are_escaped() -> None:
    output = summary_text(make_run(notes=["worker \x1b[31mred\x1b[0m\nsecond line"]), width=200)

    assert "\x1b" not in output
    assert "worker \\x1b[31mred\\x1b[0m second line" in output


def test_summary_without_notes_has_no_heading() -> None:
    output = summary_text(make_run(notes=[]))

    assert "Notes" not in output


def test_summary_without_stages_has_no_stage_table() -> None:
    output = summary_text(make_run(stages=[]))

    assert "Stages" not in output
