"""Shared fixtures: a runner of the real `aitax` command, and a check that no test leaves a profiler on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aitax import markers


@pytest.fixture(autouse=True)
def no_profiler_left_attached() -> Iterator[None]:
    yield
    assert sys.getprofile() is None, "a test left a profile function attached"
    assert sys.gettrace() is None or "coverage" in repr(sys.gettrace()), "a test left a tracer on"
    assert markers.active_recorder() is None, "a test left an aitax recorder installed"


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def write_script(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a dedented target script into tmp_path and return its path."""

    def write(name: str, source: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


def run_aitax(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 240
) -> CommandResult:
    """Run the real `aitax` command in a subprocess, as a user would."""
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    # The console script, as users run it: unlike python -m aitax, it does not put
    # the working folder first on aitax's own sys.path.
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "aitax"), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)


def profile_source(directory: Path, source: str, passes: str = "clean,cpu") -> dict[str, Any]:
    """Write `source` as pipeline.py in `directory`, run `aitax run` on it, and return run.json."""
    (directory / "pipeline.py").write_text(textwrap.dedent(source), encoding="utf-8")
    result = run_aitax(
        "run", "-q", "--force", "--passes", passes, "-o", "rep", "pipeline.py", cwd=directory
    )
    assert result.returncode == 0, result.stderr
    return json.loads((directory / "rep" / "run.json").read_text())  # type: ignore[no-any-return]
