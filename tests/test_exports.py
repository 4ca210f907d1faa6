"""CPU views for other viewers, written from a real pyinstrument session recorded here.

The speedscope file must carry the top-level keys of speedscope's file format
schema, and the Chrome trace must hold complete events that nest without
overlapping on each thread and span the session's sampled time.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyinstrument import Profiler
from pyinstrument.renderers import SpeedscopeRenderer
from pyinstrument.session import Session

from aitax.report.chrome_trace import trace_events
from aitax.report.exports import (
    PROF_FILE,
    PYINSTRUMENT_HTML,
    SPEEDSCOPE_FILE,
    TRACE_FILE,
    export_cpu_views,
)

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
SPEEDSCOPE_KEYS = {"$schema", "profiles", "shared", "name", "activeProfileIndex", "exporter"}


def square_sum(count: int) -> int:
    total = 0
    for value in range(count):
        total += value * value
    return total


class Accumulator:
    def add_many(self, count: int) -> int:
        return sum(index % 7 for index in range(count))


def workload() -> None:
    for _ in range(8):
        square_sum(60_000)
        Accumulator().add_many(40_000)
        time.sleep(0.004)


@dataclass(frozen=True)
class Exported:
    session: Session
    folder: Path
    written: dict[str, str]

    def json(self, name: str) -> Any:
        return json.loads((self.folder / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        workload()
    finally:
        profiler.stop()
    session = profiler.last_session
    assert session is not None

    folder = tmp_path_factory.mktemp("cpu-views")
    session_path = folder / "session.json"
    session.save(session_path)
    written = export_cpu_views(session_path, folder)
    return Exported(Session.load(str(session_path)), folder, written)


def slices(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in trace["traceEvents"] if event["ph"] == "X"]


def nesting_errors(events: list[dict[str, Any]]) -> list[str]:
    """List every event that starts inside an earlier event of its thread but ends after it."""
    errors: list[str] = []
    by_thread: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_thread[event["tid"]].append(event)

    for tid, thread_events in by_thread.items():
        open_ends: list[int] = []
        for event in sorted(thread_events, key=lambda item: (item["ts"], -item["dur"])):
            start, end = event["ts"], event["ts"] + event["dur"]
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            if open_ends and end > open_ends[-1]:
                errors.append(f"thread {tid}: {event['name']} [{start}, {end}) overlaps its parent")
            open_ends.append(end)
    return errors


def sampled_seconds(session: Session) -> float:
    return sum(seconds for _, seconds in session.frame_records)


# Files and labels


def test_export_writes_every_view(exported: Exported) -> None:
    names = set(exported.written.values())

    assert names == {PROF_FILE, PYINSTRUMENT_HTML, SPEEDSCOPE_FILE, TRACE_FILE}
    for name in names:
        assert (exported.folder / name).stat().st_size > 0


def test_export_labels_name_the_viewers(exported: Exported) -> None:
    labels = {name: label for label, name in exported.written.items()}

    assert "speedscope" in labels[SPEEDSCOPE_FILE]
    assert "Perfetto" in labels[TRACE_FILE]


def test_failed_view_leaves_others_written(
    tmp_path: Path, exported: Exported, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def fail(self: SpeedscopeRenderer, session: Session) -> str:
        raise ValueError("renderer broke")

    session_path = tmp_path / "session.json"
    exported.session.save(session_path)
    monkeypatch.setattr(SpeedscopeRenderer, "render", fail)

    with caplog.at_level(logging.WARNING, logger="aitax.report.exports"):
        written = export_cpu_views(session_path, tmp_path)

    assert SPEEDSCOPE_FILE not in written.values()
    assert TRACE_FILE in written.values()
    assert not (tmp_path / SPEEDSCOPE_FILE).exists()
    assert "renderer broke" in caplog.text


def test_unreadable_session_raises(tmp_path: Path) -> None:
    session_path = tmp_path / "session.json"
    session_path.write_text("not json", encoding="utf-8")

    with pytest.raises(ValueError):
        export_cpu_views(session_path, tmp_path)


# Speedscope


def test_speedscope_has_schema_keys(exported: Exported) -> None:
    document = exported.json(SPEEDSCOPE_FILE)

    assert set(document) >= SPEEDSCOPE_KEYS
    assert document["$schema"] == SPEEDSCOPE_SCHEMA
    assert isinstance(document["shared"]["frames"], list)
    assert len(document["profiles"]) == 1


def test_speedscope_profile_is_evented(exported: Exported) -> None:
    document = exported.json(SPEEDSCOPE_FILE)
    profile = document["profiles"][0]

    assert profile["type"] == "evented"
    assert profile["unit"] == "seconds"
    assert profile["startValue"] == 0
    assert profile["endValue"] == pytest.approx(exported.session.duration)


def test_speedscope_events_balance(exported: Exported) -> None:
    document = exported.json(SPEEDSCOPE_FILE)
    frames = document["shared"]["frames"]
    events = document["profiles"][0]["events"]

    stack: list[int] = []
    times = [event["at"] for event in events]
    for event in events:
        assert 0 <= event["frame"] < len(frames)
        if event["type"] == "O":
            stack.append(event["frame"])
        else:
            assert event["type"] == "C"
            assert stack.pop() == event["frame"]
    assert stack == []
    assert times == sorted(times)
    assert {"square_sum", "add_many"} <= {frame["name"] for frame in frames}


# Chrome trace


def test_trace_is_trace_event_json(exported: Exported) -> None:
    trace = exported.json(TRACE_FILE)

    assert trace["displayTimeUnit"] == "ms"
    assert slices(trace)
    for event in slices(trace):
        assert isinstance(event["name"], str)
        assert isinstance(event["ts"], int)
        assert isinstance(event["dur"], int)
        assert event["dur"] > 0
        assert event["pid"] == 1


def test_trace_names_the_sampled_thread(exported: Exported) -> None:
    trace = exported.json(TRACE_FILE)

    names = {
        event["tid"]: event["args"]["name"]
        for event in trace["traceEvents"]
        if event["ph"] == "M" and event["name"] == "thread_name"
    }
    assert "MainThread" in names.values()
    assert {event["tid"] for event in slices(trace)} <= set(names)
    assert "MainThread" not in {event["name"] for event in slices(trace)}


def test_trace_events_nest_per_thread(exported: Exported) -> None:
    trace = exported.json(TRACE_FILE)

    assert nesting_errors(slices(trace)) == []


def test_trace_duration_matches_session(exported: Exported) -> None:
    trace = exported.json(TRACE_FILE)
    events = slices(trace)

    start = min(event["ts"] for event in events)
    end = max(event["ts"] + event["dur"] for event in events)
    sampled = sampled_seconds(exported.session)
    assert start == 0
    assert end == round(sampled * 1_000_000)
    assert end / 1e6 == pytest.approx(exported.session.duration, rel=0.02, abs=0.005)


def test_trace_names_functions_and_methods(exported: Exported) -> None:
    events = slices(exported.json(TRACE_FILE))

    by_name = {event["name"]: event for event in events}
    assert by_name["square_sum"]["args"]["file"] == __file__
    assert by_name["square_sum"]["args"]["line"] == square_sum.__code__.co_firstlineno
    assert "Accumulator.add_many" in by_name
    assert "workload" in by_name


def test_trace_workload_spans_its_calls(exported: Exported) -> None:
    events = slices(exported.json(TRACE_FILE))

    workload_events = [event for event in events if event["name"] == "workload"]
    inner = [event for event in events if event["name"] in ("square_sum", "Accumulator.add_many")]
    assert len(workload_events) == 1
    outer = workload_events[0]
    for event in inner:
        assert outer["ts"] <= event["ts"]
        assert event["ts"] + event["dur"] <= outer["ts"] + outer["dur"]


# The converter on hand-built records, with exact times


def test_converter_merges_samples_with_same_stack() -> None:
    records = [
        (["main\x00a.py\x001", "f\x00a.py\x0010\x01l11"], 0.001),
        (["main\x00a.py\x001", "f\x00a.py\x0010\x01l12"], 0.002),
        (["main\x00a.py\x001", "g\x00a.py\x0020"], 0.003),
        (["main\x00a.py\x001"], 0.001),
    ]

    events = [event for event in trace_events(records) if event["ph"] == "X"]

    spans = [(event["name"], event["ts"], event["dur"]) for event in events]
    assert spans == [("main", 0, 7000), ("f", 0, 3000), ("g", 3000, 3000)]
    assert events[1]["args"] == {"file": "a.py", "line": 10}


def test_converter_reopens_frame_after_other_call() -> None:
    records = [
        (["main\x00a.py\x001", "f\x00a.py\x0010"], 0.001),
        (["main\x00a.py\x001", "g\x00a.py\x0020"], 0.001),
        (["main\x00a.py\x001", "f\x00a.py\x0010"], 0.001),
    ]

    events = [event for event in trace_events(records) if event["ph"] == "X"]

    spans = [(event["name"], event["ts"], event["dur"]) for event in events]
    assert spans == [("main", 0, 3000), ("f", 0, 1000), ("g", 1000, 1000), ("f", 2000, 1000)]


def test_converter_uses_thread_frame_as_track() -> None:
    thread = "Worker\x00<thread>\x00140000000000001"
    records = [([thread, "run\x00w.py\x005\x01cWorker"], 0.002)]

    events = trace_events(records)

    threads = [event for event in events if event["name"] == "thread_name"]
    calls = [event for event in events if event["ph"] == "X"]
    assert threads[0]["args"] == {"name": "Worker"}
    assert [(event["name"], event["tid"]) for event in calls] == [("Worker.run", threads[0]["tid"])]


def test_converter_keeps_synthetic_frames() -> None:
    records = [(["main\x00a.py\x001", "[await]"], 0.001)]

    calls = [event for event in trace_events(records) if event["ph"] == "X"]

    assert calls[1]["name"] == "[await]"
    assert calls[1]["args"] == {}


def test_converter_of_no_samples_has_no_slices() -> None:
    events = trace_events([])

    assert [event for event in events if event["ph"] == "X"] == []


def test_pyinstrument_page_escapes_hostile_names(tmp_path: Path) -> None:
    hostile = "</script><svg onload=document.body.dataset.pwned=1>"
    stack = ["MainThread\x00<thread>\x001", f"{hostile}\x00/srv/{hostile}.py\x001\x01l2"]
    session = Session(
        frame_records=[(stack, 0.5)],
        start_time=time.time(),
        duration=0.5,
        min_interval=0.001,
        max_interval=0.001,
        sample_count=1,
        start_call_stack=stack[:1],
        target_description="hostile",
        cpu_time=0.5,
        sys_path=[],
        sys_prefixes=[],
    )
    path = tmp_path / "session.pyisession"
    session.save(path)

    export_cpu_views(path, tmp_path)
    page = (tmp_path / PYINSTRUMENT_HTML).read_text(encoding="utf-8")

    assert "<svg onload" not in page
    assert "\\u003csvg onload" in page
    assert page.count("</script>") == page.count("<script>")
