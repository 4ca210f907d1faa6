"""Summaries of the child-process watch's records: kinds, command labels and CPU time.

Pure functions over the watch's process records, so they are tested on
hand-built trees with exact numbers.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aitax.redact import redact_argv

# Processes listed one by one in the capture, by CPU time. The rest are summed.
MAX_LISTED_PROCESSES: Final = 20
MAX_COMMAND_CHARACTERS: Final = 80

LOKY_WORKER: Final = "loky worker"
SPAWN_WORKER: Final = "multiprocessing spawn worker"
FORKSERVER: Final = "multiprocessing forkserver"
FORKSERVER_WORKER: Final = "multiprocessing forkserver worker"
FORKED: Final = "forked process"
RESOURCE_TRACKER: Final = "resource tracker"
SUBPROCESS: Final = "subprocess"

# Markers in the argument after `python -m` or `python -c`, as multiprocessing
# (CPython 3.11) and loky (joblib 1.6) start their helper processes.
_MODULE_KINDS: Final = (("loky.backend.popen_loky_posix", LOKY_WORKER),)
_CODE_KINDS: Final = (
    ("multiprocessing.spawn import spawn_main", SPAWN_WORKER),
    ("multiprocessing.forkserver import main", FORKSERVER),
    ("multiprocessing.resource_tracker import main", RESOURCE_TRACKER),
    ("loky.backend.resource_tracker import main", RESOURCE_TRACKER),
)

# Executable names of Python interpreters: python, python3.11, pypy3 and so on.
_PYTHON_NAMES: Final = ("python", "pypy")

ProcessKey = tuple[int, float]


@dataclass
class ProcessRecord:
    """A descendant of the pass, keyed by pid and start time so that a reused pid is a new record.

    CPU times are seconds, as last seen. `waited_children_cpu_s` is the CPU time
    of the children that this process reaped, as the kernel counts it.
    `parent` is None for a child of the pass itself. Seen times are seconds
    since the watch started, and polls are numbered from 1.
    """

    pid: int
    start: float
    parent: ProcessKey | None
    argv: list[str]
    name: str
    first_seen_s: float
    last_seen_s: float
    first_poll: int
    last_poll: int
    cpu_s: float = 0.0
    waited_children_cpu_s: float = 0.0
    # True while the command line equals the parent's: a fork that has not run exec yet.
    same_command_as_parent: bool = False
    alive_at_end: bool = False

    @property
    def key(self) -> ProcessKey:
        return self.pid, self.start


def classify(record: ProcessRecord, parent_kind: str | None) -> str:
    """Name the kind of process from its command line, or from its parent's for a bare fork."""
    if record.same_command_as_parent:
        return FORKSERVER_WORKER if parent_kind in (FORKSERVER, FORKSERVER_WORKER) else FORKED
    option, argument = _python_option(record.argv)
    markers: tuple[tuple[str, str], ...]
    if option == "-m":
        markers = _MODULE_KINDS
    elif option == "-c":
        markers = _CODE_KINDS
    else:
        return SUBPROCESS
    for marker, kind in markers:
        if marker in argument:
            return kind
    return SUBPROCESS


def _python_option(argv: Sequence[str]) -> tuple[str, str]:
    """Return the first `-m` or `-c` option of a Python command line and its value."""
    if not argv or not os.path.basename(argv[0]).startswith(_PYTHON_NAMES):
        return "", ""
    for index, argument in enumerate(argv[1:-1], start=1):
        if argument in ("-m", "-c"):
            return argument, argv[index + 1]
    return "", ""


def command_label(record: ProcessRecord, kind: str, parent_label: str | None) -> str:
    """Return a short command line with secret-looking arguments redacted."""
    if kind == FORKSERVER_WORKER:
        return "worker forked by the multiprocessing forkserver"
    if kind == FORKED:
        return f"fork of {parent_label}" if parent_label else "fork of the target"
    if not record.argv:
        return record.name
    executable = os.path.basename(record.argv[0]) or record.name
    # One line: a newline inside a `python -c` program is shown as \n.
    label = shlex.join(redact_argv([executable, *record.argv[1:]])).replace("\n", "\\n")
    if len(label) > MAX_COMMAND_CHARACTERS:
        label = label[: MAX_COMMAND_CHARACTERS - 1] + "…"
    return label


def estimate_cpu_s(
    records: Mapping[ProcessKey, ProcessRecord], root_waited_cpu_s: float, final_poll: int
) -> float:
    """Estimate the CPU seconds of all descendants, each counted once.

    Each process's own CPU time is polled. The children it reaped are counted
    twice over: exactly in the kernel's total of its reaped children, which also
    includes those too short-lived to be seen, and as a lower bound in their polled
    times. The larger of the two is kept, never their sum. What a reaped child
    left running (an orphan, reparented to init) is in no kernel total of the
    tree, and neither are children still there at the end, alive or zombie, so
    their polled times are added. The pass itself is the root, with
    `root_waited_cpu_s` from RUSAGE_CHILDREN.
    """
    children: dict[ProcessKey | None, list[ProcessRecord]] = {}
    for record in records.values():
        children.setdefault(record.parent, []).append(record)

    # `covered` is the part of a process's time in its parent's kernel total once
    # the parent reaped it: its own time and that of the children it reaped.
    # `uncovered` is the rest.
    covered: dict[ProcessKey, float] = {}
    uncovered: dict[ProcessKey, float] = {}
    # Deepest first, so that every child is summed before its parent.
    for key in sorted(records, key=lambda key: -_depth(records, key)):
        record = records[key]
        reaped, remaining = _split_children(
            children.get(key, []), record.last_poll, ended=record.last_poll < final_poll
        )
        covered[key] = record.cpu_s + max(
            record.waited_children_cpu_s, sum(covered[child.key] for child in reaped)
        )
        uncovered[key] = sum(uncovered[child.key] for child in reaped) + sum(
            covered[child.key] + uncovered[child.key] for child in remaining
        )

    reaped, remaining = _split_children(children.get(None, []), final_poll, ended=False)
    return (
        max(root_waited_cpu_s, sum(covered[child.key] for child in reaped))
        + sum(uncovered[child.key] for child in reaped)
        + sum(covered[child.key] + uncovered[child.key] for child in remaining)
    )


def _split_children(
    children: Sequence[ProcessRecord], parent_last_poll: int, ended: bool
) -> tuple[list[ProcessRecord], list[ProcessRecord]]:
    """Split children into those their parent reaped and those it did not.

    A child that vanished while its parent was still seen was reaped by it. One
    last seen at the same poll as a parent that then `ended` is taken as reaped
    too, as a parent that waits for its children before it exits does. Were it
    reparented instead, its time after that poll is lost, but never counted twice.
    """
    reaped: list[ProcessRecord] = []
    remaining: list[ProcessRecord] = []
    for child in children:
        if child.last_poll < parent_last_poll or (ended and child.last_poll == parent_last_poll):
            reaped.append(child)
        else:
            remaining.append(child)
    return reaped, remaining


def _depth(records: Mapping[ProcessKey, ProcessRecord], key: ProcessKey) -> int:
    depth = 0
    parent = records[key].parent
    while parent is not None and parent in records:
        depth += 1
        parent = records[parent].parent
    return depth


def summarize(
    records: Mapping[ProcessKey, ProcessRecord],
    waited_cpu_s: float,
    *,
    final_poll: int,
    interval_s: float,
    watch_cpu_s: float,
    error: str | None,
) -> dict[str, Any]:
    """Return the JSON record of a watch: totals, counts by kind and the top processes by CPU.

    The size is bounded: past `MAX_LISTED_PROCESSES`, processes are only counted
    and their CPU time summed.
    """
    kinds, labels = _kinds_and_labels(records)
    ranked = sorted(records.values(), key=lambda record: -record.cpu_s)
    listed = ranked[:MAX_LISTED_PROCESSES]
    omitted = ranked[MAX_LISTED_PROCESSES:]
    by_kind: dict[str, int] = {}
    cpu_by_kind: dict[str, float] = {}
    for record in ranked:
        kind = kinds[record.key]
        by_kind[kind] = by_kind.get(kind, 0) + 1
        cpu_by_kind[kind] = cpu_by_kind.get(kind, 0.0) + record.cpu_s

    return {
        "cpu_s": estimate_cpu_s(records, waited_cpu_s, final_poll),
        "seen_cpu_s": sum(record.cpu_s for record in ranked),
        "waited_cpu_s": waited_cpu_s,
        "count": len(ranked),
        "alive_at_end": sum(1 for record in ranked if record.alive_at_end),
        "by_kind": by_kind,
        "cpu_by_kind": cpu_by_kind,
        "processes": [_process_entry(record, kinds, labels) for record in listed],
        "omitted_count": len(omitted),
        "omitted_cpu_s": sum(record.cpu_s for record in omitted),
        "polls": final_poll,
        "poll_interval_s": interval_s,
        "watch_cpu_s": watch_cpu_s,
        "error": error,
    }


def _kinds_and_labels(
    records: Mapping[ProcessKey, ProcessRecord],
) -> tuple[dict[ProcessKey, str], dict[ProcessKey, str]]:
    kinds: dict[ProcessKey, str] = {}
    labels: dict[ProcessKey, str] = {}
    # Parents first, because a bare fork takes its name from its parent.
    for key in sorted(records, key=lambda key: _depth(records, key)):
        record = records[key]
        parent = record.parent
        kinds[key] = classify(record, kinds.get(parent) if parent is not None else None)
        labels[key] = command_label(
            record, kinds[key], labels.get(parent) if parent is not None else None
        )
    return kinds, labels


def _process_entry(
    record: ProcessRecord, kinds: Mapping[ProcessKey, str], labels: Mapping[ProcessKey, str]
) -> dict[str, Any]:
    executable = os.path.basename(record.argv[0]) if record.argv else record.name
    return {
        "pid": record.pid,
        "kind": kinds[record.key],
        "executable": executable or record.name,
        "command": labels[record.key],
        "cpu_s": record.cpu_s,
        "first_seen_s": record.first_seen_s,
        "last_seen_s": record.last_seen_s,
        "alive_at_end": record.alive_at_end,
    }
