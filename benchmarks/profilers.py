"""Commands that run the pipelines under other Python profilers, each with its defaults.

Each profiler writes its output file into the run's scratch folder, so writing
the profile counts in its wall time, as it does for aitax's report.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from timing import Command


@dataclass(frozen=True)
class Profiler:
    """How to run one profiler, and what must be installed for it."""

    key: str
    label: str
    module: str | None
    executable: str | None
    build: Callable[[Path, Path, list[str]], list[str]]


def _pyinstrument(scratch: Path, script: Path, args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pyinstrument",
        "-o",
        str(scratch / "profile.txt"),
        str(script),
        *args,
    ]


def _cprofile(scratch: Path, script: Path, args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(scratch / "profile.pstats"),
        str(script),
        *args,
    ]


def _kernprof(scratch: Path, script: Path, args: list[str]) -> list[str]:
    # With no @profile decorators in the target, this times the line tracer's base cost only.
    output = str(scratch / "profile.lprof")
    return [sys.executable, "-m", "kernprof", "-l", "-o", output, str(script), *args]


def _memray(scratch: Path, script: Path, args: list[str]) -> list[str]:
    output = str(scratch / "profile.bin")
    return [sys.executable, "-m", "memray", "run", "-q", "-o", output, str(script), *args]


def _scalene(cpu_only: bool) -> Callable[[Path, Path, list[str]], list[str]]:
    def build(scratch: Path, script: Path, args: list[str]) -> list[str]:
        argv = [sys.executable, "-m", "scalene", "run", "-o", str(scratch / "profile.json")]
        if cpu_only:
            argv.append("--cpu-only")
        argv.append(str(script))
        if args:
            # Scalene passes the arguments after "---" to the target.
            argv += ["---", *args]
        return argv

    return build


def _py_spy(scratch: Path, script: Path, args: list[str]) -> list[str]:
    executable = find_executable("py-spy") or "py-spy"
    output = str(scratch / "profile.svg")
    return [executable, "record", "-o", output, "--", sys.executable, str(script), *args]


def _sampler(kind: str) -> Callable[[Path, Path, list[str]], list[str]]:
    def build(scratch: Path, script: Path, args: list[str]) -> list[str]:
        runner = str(Path(__file__).with_name("samplers.py"))
        output = str(scratch / "samples.txt")
        return [sys.executable, runner, kind, output, str(script), *args]

    return build


PROFILERS: tuple[Profiler, ...] = (
    Profiler("pyinstrument", "python -m pyinstrument", "pyinstrument", None, _pyinstrument),
    Profiler("cprofile", "python -m cProfile -o FILE", "cProfile", None, _cprofile),
    Profiler("kernprof", "kernprof -l (no @profile)", "kernprof", None, _kernprof),
    Profiler("memray", "python -m memray run", "memray", None, _memray),
    Profiler("scalene-cpu", "scalene run --cpu-only", "scalene", None, _scalene(cpu_only=True)),
    Profiler("scalene", "scalene run (CPU and memory)", "scalene", None, _scalene(cpu_only=False)),
    Profiler("py-spy", "py-spy record", None, "py-spy", _py_spy),
    # In-process samplers that the CPU pass could use, each alone at 1 ms.
    Profiler(
        "sampler-thread", "sampling thread (the CPU pass's sampler)", None, None, _sampler("thread")
    ),
    Profiler("sampler-signal", "SIGALRM sampler, main thread only", None, None, _sampler("signal")),
    Profiler(
        "sampler-hook", "pyinstrument hook, in process", "pyinstrument", None, _sampler("hook")
    ),
)


def find_executable(name: str) -> str | None:
    """Find `name` beside this interpreter first, so that a virtual environment's tools win."""
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search_path)


def missing_reason(profiler: Profiler) -> str | None:
    if profiler.module is not None and importlib.util.find_spec(profiler.module) is None:
        return f"not installed: no module {profiler.module} in {sys.executable}"
    if profiler.executable is not None and find_executable(profiler.executable) is None:
        return f"not installed: no {profiler.executable} executable on PATH"
    return None


def profiler_commands(script: Path, args: list[str]) -> list[Command]:
    commands = []
    for profiler in PROFILERS:
        commands.append(
            Command(
                key=f"profiler:{profiler.key}",
                label=profiler.label,
                build_argv=_bind(profiler, script, args),
                unavailable=missing_reason(profiler),
            )
        )
    return commands


def _bind(profiler: Profiler, script: Path, args: list[str]) -> Callable[[Path], list[str]]:
    return lambda scratch: profiler.build(scratch, script, args)
