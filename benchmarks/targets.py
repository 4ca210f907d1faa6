"""The pipelines that the benchmarks profile, with their full and quick sizes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES_DIR = Path(__file__).resolve().parent / "pipelines"
EXAMPLE_DIR = REPO_ROOT / "examples" / "scoring"

# Seconds that examples/scoring/prepare.py may take to build the example's files.
PREPARE_TIMEOUT_S = 600
# Native libraries run single-threaded in every command, so that thread pools on a
# small shared machine do not add noise of their own.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Pipeline:
    """A target script and the arguments that size its run."""

    name: str
    title: str
    script: Path
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...]
    prepare_script: Path | None = None

    def args(self, quick: bool) -> list[str]:
        return list(self.quick_args if quick else self.full_args)

    def missing_reason(self) -> str | None:
        """Return why the pipeline cannot run here, or None when its files exist."""
        for path in (self.script, self.prepare_script):
            if path is not None and not path.is_file():
                return f"{path.relative_to(REPO_ROOT)} not found"
        return None


EXAMPLE = Pipeline(
    name="example",
    title="example (scoring service)",
    script=EXAMPLE_DIR / "service.py",
    full_args=("--requests", "50"),
    quick_args=("--requests", "5"),
    prepare_script=EXAMPLE_DIR / "prepare.py",
)
CALL_HEAVY = Pipeline(
    name="call_heavy",
    title="call-heavy (pandas row loop)",
    script=PIPELINES_DIR / "call_heavy.py",
    full_args=("--rows", "15000"),
    quick_args=("--rows", "4000"),
)
NATIVE_HEAVY = Pipeline(
    name="native_heavy",
    title="native (NumPy batches)",
    script=PIPELINES_DIR / "native_heavy.py",
    full_args=("--batches", "20"),
    quick_args=("--batches", "2"),
)
PIPELINES: dict[str, Pipeline] = {
    pipeline.name: pipeline for pipeline in (EXAMPLE, CALL_HEAVY, NATIVE_HEAVY)
}


def benchmark_env() -> dict[str, str]:
    """Return the environment of every timed command: this process's, with native threads set to 1."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = "1"
    return env


# Pipelines whose prepare script already succeeded in this process.
_prepared: set[str] = set()


def prepare(pipeline: Pipeline, env: Mapping[str, str]) -> str | None:
    """Run the pipeline's prepare script once per process; return a failure message or None."""
    if pipeline.prepare_script is None or pipeline.name in _prepared:
        return None

    logger.info("preparing %s with %s", pipeline.name, pipeline.prepare_script.name)
    try:
        completed = subprocess.run(
            [sys.executable, str(pipeline.prepare_script)],
            cwd=REPO_ROOT, env=dict(env), capture_output=True, text=True,
            timeout=PREPARE_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"{pipeline.prepare_script.name} timed out after {PREPARE_TIMEOUT_S} s"

    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        return (
            f"{pipeline.prepare_script.name} exited with status {completed.returncode}: {last_line}"
        )
    return None
