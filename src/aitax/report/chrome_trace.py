"""Convert a pyinstrument session into the Chrome trace event format.

Perfetto (ui.perfetto.dev) and chrome://tracing open the result. This module
writes the format's JSON object form:
`{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}`.

pyinstrument stores a session as frame records: each record is the sampled call
stack, outermost frame first, and the seconds that the stack accounts for. The
samples are laid end to end on one timeline that starts at 0. A frame that
stays on the stack over consecutive samples becomes one complete ("X") event,
so nested calls nest. Timestamps are whole microseconds, rounded from the
running total of sample times, so an event never ends after its parent.

The timeline is the sum of the sample times, which can differ slightly from the
session's wall-clock duration. It shows where time went, in sampling order, and
not when each call happened: a function called many times in a row with the
same callers shows as one long event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pyinstrument.session import Session

logger = logging.getLogger(__name__)

IDENTIFIER_SEPARATOR: Final = "\x00"
ATTRIBUTES_SEPARATOR: Final = "\x01"
CLASS_NAME_MARKER: Final = "c"

# pyinstrument 5 puts a pseudo-frame "name\x00<thread>\x00ident" at the root of
# every stack. It names the sampled thread and is not a call.
THREAD_FILE: Final = "<thread>"

PROCESS_ID: Final = 1
DEFAULT_THREAD_NAME: Final = "sampled thread"

FrameRecord = tuple[Sequence[str], float]


@dataclass
class _OpenFrame:
    identifier: str
    name: str
    file: str | None
    line: int | None
    start_us: int
    depth: int


@dataclass
class _Timeline:
    """The frames open at the current time, and the events of the frames already closed.

    `closed` pairs each event with its stack depth, so that a parent sorts
    before a child that starts and ends at the same microsecond.
    """

    tid: int = 0
    open_frames: list[_OpenFrame] = field(default_factory=list)
    closed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def session_trace(session: Session) -> dict[str, Any]:
    """Return the Chrome trace (JSON object format) of a pyinstrument session."""
    events = trace_events(session.frame_records)
    logger.debug(
        "Converted %d samples into %d trace events", len(session.frame_records), len(events)
    )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "source": "pyinstrument session, samples laid end to end",
            "target": session.target_description,
            "session_duration_s": session.duration,
            "sample_count": session.sample_count,
        },
    }


def trace_events(frame_records: Sequence[FrameRecord]) -> list[dict[str, Any]]:
    """Return metadata and complete ("X") events for `frame_records`, sorted by start time.

    Events of each thread nest and do not overlap. Events shorter than one
    microsecond after rounding are left out.
    """
    threads: dict[str, tuple[int, str]] = {}
    timeline = _Timeline()
    elapsed_s = 0.0

    for stack, seconds in frame_records:
        now_us = _microseconds(elapsed_s)
        thread_key, thread_name, frames = _split_thread(stack)
        if thread_key not in threads:
            threads[thread_key] = (len(threads) + 1, thread_name)
        _switch_thread(timeline, threads[thread_key][0], now_us)
        _advance(timeline, frames, now_us)
        elapsed_s += max(float(seconds), 0.0)

    _close(timeline, 0, _microseconds(elapsed_s))
    ordered = sorted(
        timeline.closed,
        key=lambda item: (item[1]["tid"], item[1]["ts"], -item[1]["dur"], item[0]),
    )
    return [*_metadata(threads.values()), *(event for _, event in ordered)]


def _split_thread(stack: Sequence[str]) -> tuple[str, str, Sequence[str]]:
    """Split off pyinstrument's thread pseudo-frame and return (thread key, thread name, calls)."""
    if stack:
        identifier = _identifier(stack[0])
        parts = identifier.split(IDENTIFIER_SEPARATOR)
        if len(parts) == 3 and parts[1] == THREAD_FILE:
            return identifier, parts[0], stack[1:]
    return "", DEFAULT_THREAD_NAME, stack


def _switch_thread(timeline: _Timeline, tid: int, now_us: int) -> None:
    """Close every open frame when the sampled thread changes."""
    if timeline.tid != tid:
        _close(timeline, 0, now_us)
        timeline.tid = tid


def _advance(timeline: _Timeline, frames: Sequence[str], now_us: int) -> None:
    """Close the open frames that this sample left, and open the ones it entered."""
    identifiers = [_identifier(frame) for frame in frames]
    depth = 0
    for open_frame, identifier in zip(timeline.open_frames, identifiers, strict=False):
        if open_frame.identifier != identifier:
            break
        depth += 1

    _close(timeline, depth, now_us)
    for frame, identifier in zip(frames[depth:], identifiers[depth:], strict=True):
        timeline.open_frames.append(_open(frame, identifier, now_us, len(timeline.open_frames)))


def _open(frame: str, identifier: str, now_us: int, depth: int) -> _OpenFrame:
    function, file, line = _parts(identifier)
    class_name = _class_name(frame)
    name = f"{class_name}.{function}" if class_name else function
    return _OpenFrame(identifier, name, file, line, now_us, depth)


def _close(timeline: _Timeline, depth: int, now_us: int) -> None:
    """Close the open frames deeper than `depth`, innermost first, ending them at `now_us`."""
    while len(timeline.open_frames) > depth:
        frame = timeline.open_frames.pop()
        duration = now_us - frame.start_us
        if duration > 0:
            event = _complete_event(frame, duration, timeline.tid)
            timeline.closed.append((frame.depth, event))


def _complete_event(frame: _OpenFrame, duration_us: int, tid: int) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if frame.file is not None:
        arguments["file"] = frame.file
    if frame.line is not None:
        arguments["line"] = frame.line
    return {
        "name": frame.name,
        "cat": "python",
        "ph": "X",
        "ts": frame.start_us,
        "dur": duration_us,
        "pid": PROCESS_ID,
        "tid": tid,
        "args": arguments,
    }


def _metadata(threads: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """Name the process and each thread, so the viewers label their tracks."""
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": PROCESS_ID,
            "tid": 0,
            "args": {"name": "profiled target (aitax CPU pass)"},
        }
    ]
    for tid, name in threads:
        events.append(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": PROCESS_ID,
                "tid": tid,
                "args": {"name": name},
            }
        )
    return events


def _identifier(frame: str) -> str:
    return frame.partition(ATTRIBUTES_SEPARATOR)[0]


def _parts(identifier: str) -> tuple[str, str | None, int | None]:
    """Split "function\\x00file\\x00line". Synthetic frames such as "[await]" have only a name."""
    parts = identifier.split(IDENTIFIER_SEPARATOR)
    if len(parts) != 3:
        return identifier, None, None
    function, file, line_text = parts
    line = int(line_text) if line_text.isdecimal() else None
    return function, file, line


def _class_name(frame: str) -> str | None:
    attributes = frame.split(ATTRIBUTES_SEPARATOR)[1:]
    return next(
        (attribute[1:] for attribute in attributes if attribute.startswith(CLASS_NAME_MARKER)),
        None,
    )


def _microseconds(seconds: float) -> int:
    return round(seconds * 1_000_000)
