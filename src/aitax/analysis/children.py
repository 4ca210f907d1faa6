"""The child processes of a run: their CPU time from the timing pass, and how to profile them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aitax.capture.capture_file import Capture
from aitax.capture.children import CHILD_PROCESSES_KEY
from aitax.capture.children_summary import (
    FORKED,
    FORKSERVER_WORKER,
    LOKY_WORKER,
    SPAWN_WORKER,
    SUBPROCESS,
)
from aitax.model.run import ChildProcess, ChildProcesses

# Below this much CPU time, children that the watch never saw get no note.
NOTE_MIN_CPU_S: Final = 0.01
MAX_NAMED_EXECUTABLES: Final = 3

# Advice for each kind of child, so that its work shows in the profile.
_ADVICE: Final = (
    ((LOKY_WORKER,), "run joblib with n_jobs=1 or profile the worker function directly"),
    (
        (SPAWN_WORKER, FORKSERVER_WORKER, FORKED),
        "call the pool's worker function in the main process, for example with the built-in "
        "map in place of Pool.map",
    ),
    ((SUBPROCESS,), "profile each subprocess's program on its own"),
)


def child_processes(timing: Capture) -> ChildProcesses | None:
    """Build the child-process record of the timing pass; None when it started no process.

    A capture without the process watch's record, such as the memory pass's,
    has only the kernel's total for the children that were waited for.
    """
    record = timing.extra.get(CHILD_PROCESSES_KEY)
    if isinstance(record, Mapping):
        return _from_watch(timing, record)

    waited_s = timing.extra.get("children_cpu_s")
    if not isinstance(waited_s, int | float) or waited_s <= 0:
        return None
    return ChildProcesses(
        pass_name=timing.pass_name,
        cpu_s=float(waited_s),
        share=_share(float(waited_s), timing.cpu_s),
        count=0,
        alive_at_end=0,
        unattributed_cpu_s=float(waited_s),
    )


def _from_watch(timing: Capture, record: Mapping[str, Any]) -> ChildProcesses | None:
    cpu_s = float(record["cpu_s"])
    count = int(record["count"])
    error = record.get("error")
    if count == 0 and cpu_s <= 0 and error is None:
        return None
    by_kind = {str(kind): int(number) for kind, number in record["by_kind"].items()}
    return ChildProcesses(
        pass_name=timing.pass_name,
        cpu_s=cpu_s,
        share=_share(cpu_s, timing.cpu_s),
        count=count,
        alive_at_end=int(record["alive_at_end"]),
        by_kind=by_kind,
        cpu_by_kind={str(kind): float(s) for kind, s in record["cpu_by_kind"].items()},
        processes=[ChildProcess(**entry) for entry in record["processes"]],
        omitted_count=int(record["omitted_count"]),
        omitted_cpu_s=float(record["omitted_cpu_s"]),
        unattributed_cpu_s=max(0.0, cpu_s - float(record["seen_cpu_s"])),
        watch_error=str(error) if error is not None else None,
        advice=advice(by_kind),
    )


def _share(children_s: float, own_s: float) -> float:
    total = children_s + own_s
    return children_s / total if total > 0 else 0.0


def advice(by_kind: Mapping[str, int]) -> str:
    """Say how to bring the work of these kinds of child into the profile; empty when no advice fits."""
    steps = [text for kinds, text in _ADVICE if any(kind in by_kind for kind in kinds)]
    if not steps:
        return ""
    return "To see that work in the profile, " + "; ".join(steps) + "."


def child_process_note(children: ChildProcesses | None) -> str | None:
    """Return the run note on CPU time that aitax did not profile, or None when it is too small."""
    if children is None:
        return None
    if children.count == 0 and children.cpu_s < NOTE_MIN_CPU_S and children.watch_error is None:
        return None

    sentences = [
        f"Child processes used {children.cpu_s:.2f} s of CPU ({children.share:.0%} of all CPU "
        f"time in the {children.pass_name} pass) that aitax did not profile"
        f"{_kinds_text(children)}.",
        "That time is missing from the stages and hotspots.",
    ]
    if children.alive_at_end:
        sentences.append(
            f"{children.alive_at_end} of them {'was' if children.alive_at_end == 1 else 'were'} "
            "still running when the target finished; "
            "their CPU time is counted until then."
        )
    if children.unattributed_cpu_s >= NOTE_MIN_CPU_S:
        sentences.append(
            f"{children.unattributed_cpu_s:.2f} s of it is known only from the kernel's totals for "
            "reaped children: children that ended before a poll saw them, and the time others "
            "used after their last poll."
        )
    if children.watch_error is not None:
        sentences.append(
            f"The process watch stopped early ({children.watch_error}), so these figures may be low."
        )
    if children.advice:
        sentences.append(children.advice)
    return " ".join(sentences)


def _kinds_text(children: ChildProcesses) -> str:
    if not children.by_kind:
        return ""
    parts = []
    for kind, number in sorted(children.by_kind.items(), key=lambda item: -item[1]):
        text = f"{number} {kind if number == 1 else _plural(kind)}"
        if kind == SUBPROCESS:
            text += f" ({_executables_text(children)})"
        parts.append(text)
    return ": " + ", ".join(parts)


def _executables_text(children: ChildProcesses) -> str:
    names: list[str] = []
    for process in children.processes:
        if process.kind == SUBPROCESS and process.executable not in names:
            names.append(process.executable)
    text = ", ".join(names[:MAX_NAMED_EXECUTABLES])
    unnamed = len(names) - MAX_NAMED_EXECUTABLES
    if unnamed > 0:
        text += f" and {unnamed} more"
    return text or "not among the listed processes"


def _plural(kind: str) -> str:
    return kind + "es" if kind.endswith("s") else kind + "s"
