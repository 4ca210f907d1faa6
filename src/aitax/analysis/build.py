"""Assemble a Run from the captures of its passes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aitax.analysis.children import child_process_note, child_processes
from aitax.analysis.classify import IDLE
from aitax.analysis.cost import cost_per_1000
from aitax.analysis.frames import ModuleResolver
from aitax.analysis.hotspots import rank_hotspots
from aitax.analysis.lines import line_profiles, stage_by_function
from aitax.analysis.rules import diagnose
from aitax.analysis.rules.base import RuleContext
from aitax.analysis.samples import Sample, build_samples
from aitax.analysis.stages import attribute_stages, auto_fractions, marked_totals, request_stats
from aitax.capture.capture_file import Capture
from aitax.config import Config
from aitax.model.run import ChildProcesses, Environment, MemoryProfile, PassResult, Run

logger = logging.getLogger(__name__)


@dataclass
class CpuProfile:
    """The CPU pass's pyinstrument records, with a stage label per record."""

    frame_records: Sequence[tuple[Sequence[str], float]]
    labels: Sequence[str | None]
    sys_path: Sequence[str]
    sys_prefixes: Sequence[str]
    wall_s: float


@dataclass
class RunInputs:
    target: str
    argv: list[str]
    started_at: datetime
    passes: list[PassResult]
    clean: Capture | None
    cpu_capture: Capture | None
    cpu: CpuProfile | None
    config: Config
    instance_cost_per_hour: float
    environment: Environment
    artifacts: dict[str, str]
    line_results: list[dict[str, Any]] | None = None
    # CPU samples already built from `cpu`, when the caller has them.
    samples: list[Sample] | None = None
    line_capture: Capture | None = None
    memory_capture: Capture | None = None
    memory: MemoryProfile | None = None


def load_samples(cpu: CpuProfile | None, config: Config) -> list[Sample]:
    if cpu is None:
        return []
    resolver = ModuleResolver(tuple(cpu.sys_path), tuple(cpu.sys_prefixes))
    return build_samples(
        cpu.frame_records, cpu.labels, resolver, config.user_rules, config.default_rules
    )


def build_run(inputs: RunInputs) -> Run:
    """Combine the clean pass's timings with the CPU pass's samples into one Run."""
    samples = (
        inputs.samples if inputs.samples is not None else load_samples(inputs.cpu, inputs.config)
    )
    notes: list[str] = []

    clean = inputs.clean
    timing = clean if clean is not None else _fallback_timing(inputs, notes)
    marked = marked_totals(timing.stages)
    fractions = auto_fractions(samples) if samples else None
    if fractions is None and timing.wall_s > sum(m.exclusive_ns for m in marked.values()) / 1e9:
        notes.append("No CPU samples: time outside marked stages is reported as 'other'.")

    stages = attribute_stages(timing.wall_s, marked, fractions)
    interleaved = sorted(entry.name for entry in marked.values() if entry.interleaved)
    if interleaved:
        notes.append(
            f"Stages {', '.join(interleaved)} ran in concurrent tasks on one thread (asyncio), "
            "and a thread's CPU clock counts every task that ran while a span was open, so "
            "their CPU time is left out. Their wall times add up over the tasks."
        )
    requests = request_stats(timing.requests)
    if requests.count == 0:
        notes.append(
            "No requests were marked, so latency percentiles and cost are missing; "
            "wrap each prediction in `with aitax.request():`."
        )

    sample_s = sum(sample.seconds for sample in samples)
    children = child_processes(timing)
    notes.extend(_sampling_notes(samples, inputs.cpu_capture))
    notes.extend(_process_notes(children, inputs.line_capture))
    mismatch = _exit_status_mismatch_note(inputs.passes, timing)
    if mismatch is not None:
        notes.insert(0, mismatch)
    lines = line_profiles(inputs.line_results or [], stage_by_function(samples))
    context = RuleContext(
        wall_s=timing.wall_s,
        stages=stages,
        requests=requests,
        stage_events=timing.stages,
        request_events=timing.requests,
        samples=samples,
        sample_scale=timing.wall_s / sample_s if sample_s > 0 else 1.0,
        lines=lines,
        memory=inputs.memory,
        pass_extras={
            capture.pass_name: capture.extra
            for capture in (clean, inputs.cpu_capture, inputs.line_capture)
            if capture is not None
        },
    )

    return Run(
        target=inputs.target,
        argv=inputs.environment.command,
        exit_code=timing.exit_code,
        wall_s=timing.wall_s,
        cpu_s=timing.cpu_s,
        peak_rss_bytes=timing.peak_rss_bytes,
        started_at=inputs.started_at.isoformat(timespec="seconds"),
        requests=requests,
        stages=stages,
        hotspots=rank_hotspots(samples),
        findings=diagnose(context),
        passes=inputs.passes,
        cost=cost_per_1000(requests, inputs.instance_cost_per_hour),
        environment=inputs.environment,
        lines=lines,
        memory=inputs.memory,
        traceback=timing.traceback,
        notes=notes,
        artifacts=inputs.artifacts,
        child_processes=children,
    )


def _sampling_notes(samples: Sequence[Sample], cpu_capture: Capture | None) -> list[str]:
    notes = []
    idle_s = sum(sample.seconds for sample in samples if sample.stage == IDLE)
    if idle_s > 0:
        notes.append(
            f"{idle_s:.2f} s of CPU-pass samples waited for work outside marked stages (an event "
            "loop in select or epoll, or a thread blocked on a lock or queue); they are left out "
            "of the stage split and the hotspots."
        )
    extra = cpu_capture.extra if cpu_capture is not None else {}
    threads = extra.get("threads")
    if isinstance(threads, int) and threads > 1:
        notes.append(f"The CPU pass sampled {threads} threads; their samples are combined.")
    return notes


def _process_notes(children: ChildProcesses | None, line_capture: Capture | None) -> list[str]:
    """Say how much CPU time child processes used, since the passes do not profile them."""
    notes = []
    children_note = child_process_note(children)
    if children_note is not None:
        notes.append(children_note)
    if line_capture is not None and line_capture.extra.get("hook_displaced"):
        notes.append(
            "The target replaced the line profiler's trace hook (sys.settrace), so line timings "
            "after that point are missing."
        )
    return notes


# The results that each pass adds to the report, named in the note on passes that ended differently.
_PASS_SECTIONS = {
    "clean": "the timings",
    "cpu": "the CPU samples (hotspots, stage split, findings)",
    "memory": "the memory profile",
    "line": "the line timings",
}


def _exit_status_mismatch_note(passes: Sequence[PassResult], timing: Capture) -> str | None:
    """Describe the passes in which the target exited with another status than in the timing pass.

    Each pass runs the target again, so a program that changes its own state or
    reads from a terminal can end differently from one pass to the next.
    """
    differing = [
        result
        for result in passes
        if result.status == "ok"
        and result.exit_code is not None
        and result.exit_code != timing.exit_code
    ]
    if not differing:
        return None
    for result in differing:
        result.error = result.error or f"the target exited with status {result.exit_code}"

    names_by_status: dict[int, list[str]] = {}
    for result in differing:
        assert result.exit_code is not None
        names_by_status.setdefault(result.exit_code, []).append(result.name)
    statuses = _join_words(
        [
            f"{status} in the {_join_words(names)} pass{'es' if len(names) > 1 else ''}"
            for status, names in names_by_status.items()
        ]
    )
    sections = _join_words(
        [
            _PASS_SECTIONS.get(result.name, f"the {result.name} pass's results")
            for result in differing
        ]
    )
    return (
        f"The passes measured different runs: the target exited with status "
        f"{timing.exit_code} in the {timing.pass_name} pass, which the times come from, but "
        f"with status {statuses}. So {sections} come from a run that ended differently. "
        "This happens when the program changes state that it reads (a file, a database) or "
        "reads interactive input, which only the first pass gets. Make each run start from "
        "the same state and input, or choose fewer passes with --passes."
    )


def _join_words(words: Sequence[str]) -> str:
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _fallback_timing(inputs: RunInputs, notes: list[str]) -> Capture:
    """Use another pass's markers when the clean pass produced nothing."""
    for capture in (inputs.cpu_capture, inputs.line_capture, inputs.memory_capture):
        if capture is not None:
            notes.append(
                f"The clean timing pass did not run or produced no capture; times come from "
                f"the {capture.pass_name} pass and include its profiler's overhead."
            )
            return capture
    notes.append("No pass produced a capture; the report has no measurements.")
    exit_code = next((p.exit_code for p in inputs.passes if p.exit_code is not None), 1)
    return Capture(
        "clean", exit_code=exit_code, wall_s=0.0, cpu_s=0.0, peak_rss_bytes=None, traceback=None
    )


def relative_artifact(path: Path, report_dir: Path) -> str:
    return path.relative_to(report_dir).as_posix()
