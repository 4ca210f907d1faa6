"""A pass in which the target ended differently from the timing pass is named in the first note."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

from aitax.analysis.build import RunInputs, build_run
from aitax.capture.capture_file import Capture
from aitax.config import Config
from aitax.model.run import Environment, PassResult
from conftest import run_aitax

# Succeeds on its first run only: it leaves a file behind and fails when it finds one.
STATEFUL_TARGET = """
import sys
from pathlib import Path

done = Path("done.marker")
if done.exists():
    print("already ran", file=sys.stderr)
    sys.exit(1)
done.write_text("ran")
total = sum(i * i for i in range(200_000))
"""


def inputs_of(passes: list[PassResult], clean_exit_code: int = 0) -> RunInputs:
    environment = Environment("3.11", "linux", "cpu", 1, {}, ["python", "t.py"], None, "0")
    clean = Capture("clean", clean_exit_code, 1.0, 1.0, None, None)
    return RunInputs(
        target="t.py",
        argv=["python", "t.py"],
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
        passes=passes,
        clean=clean,
        cpu_capture=None,
        cpu=None,
        config=Config(),
        instance_cost_per_hour=1.0,
        environment=environment,
        artifacts={},
    )


def test_differing_passes_lead_the_notes() -> None:
    passes = [
        PassResult("clean", "ok", 1.0, 0),
        PassResult("cpu", "ok", 1.0, 1),
        PassResult("memory", "ok", 1.0, 1),
        PassResult("line", "ok", 1.0, 0),
    ]
    run = build_run(inputs_of(passes))
    note = run.notes[0]
    assert "status 0 in the clean pass, which the times come from" in note
    assert "status 1 in the cpu and memory passes" in note
    assert "the CPU samples (hotspots, stage split, findings) and the memory profile" in note
    assert "line" not in note
    assert "interactive input, which only the first pass gets" in note
    assert passes[1].error == "the target exited with status 1"
    assert passes[3].error is None


def test_each_differing_status_is_named() -> None:
    passes = [
        PassResult("clean", "ok", 1.0, 0),
        PassResult("cpu", "ok", 1.0, 1),
        PassResult("memory", "ok", 1.0, 137),
    ]
    note = build_run(inputs_of(passes)).notes[0]
    assert "status 1 in the cpu pass and 137 in the memory pass" in note


def test_matching_or_failed_passes_add_no_note() -> None:
    passes = [
        PassResult("clean", "ok", 1.0, 2),
        PassResult("cpu", "ok", 1.0, 2),
        PassResult("memory", "failed", 1.0, 1, "the process was killed by signal SIGKILL"),
    ]
    run = build_run(inputs_of(passes, clean_exit_code=2))
    assert [note for note in run.notes if "different runs" in note] == []


def test_stateful_target_report_names_changed_passes(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("stateful.py", STATEFUL_TARGET)

    result = run_aitax(
        "run", "-q", "--passes", "clean,cpu,memory", "-o", "rep", "stateful.py", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "rep" / "run.json").read_text())
    assert run["exit_code"] == 0
    statuses = {p["name"]: (p["exit_code"], p["error"]) for p in run["passes"]}
    assert statuses["clean"] == (0, None)
    assert statuses["cpu"] == (1, "the target exited with status 1")
    assert statuses["memory"] == (1, "the target exited with status 1")
    note = run["notes"][0]
    assert "status 1 in the cpu and memory passes" in note
    assert "come from a run that ended differently" in note
    assert html.escape(note) in (tmp_path / "rep" / "report.html").read_text()
