"""The CPU pass's sampling thread: C function names, stage labels, frame identifiers, deep stacks."""

from __future__ import annotations

import selectors
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import aitax
from aitax import markers
from aitax.capture.callee import called_c_function
from aitax.capture.sampler import (
    ELIDED_FILE,
    MAX_LEAF_FRAMES,
    MAX_ROOT_FRAMES,
    StackSampler,
    frame_identifier,
    frame_records,
    line_at,
)


def callee_while_running(work: Callable[[], object], delay: float = 0.05) -> str | None:
    """Run `work` in this thread and name the C function it calls `delay` seconds in."""
    target = threading.get_ident()
    found: list[str | None] = []

    def look() -> None:
        time.sleep(delay)
        found.append(called_c_function(sys._current_frames()[target]))

    thread = threading.Thread(target=look)
    thread.start()
    work()
    thread.join()
    return found[0]


def sleep_briefly() -> None:
    time.sleep(0.3)


def select_briefly() -> None:
    selector = selectors.DefaultSelector()
    selector.select(0.3)


def wait_on_lock() -> None:
    lock = threading.Lock()
    lock.acquire()
    lock.acquire(timeout=0.3)


def count_in_sqlite() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000000) "
        "SELECT count(*) FROM c"
    ).fetchone()


def test_callee_module_function() -> None:
    assert callee_while_running(sleep_briefly) == "sleep"


def test_callee_attribute_of_instance() -> None:
    assert callee_while_running(select_briefly) in ("epoll.poll", "poll.poll", "kqueue.control")


def test_callee_method_of_local() -> None:
    assert callee_while_running(wait_on_lock) == "lock.acquire"


def test_callee_sqlite_statement() -> None:
    assert callee_while_running(count_in_sqlite) == "Connection.execute"


class Guarded:
    """An object whose property counts how often it is read."""

    reads = 0

    @property
    def clock(self) -> Any:
        Guarded.reads += 1
        return time

    def wait(self) -> None:
        self.clock.sleep(0.3)


def test_callee_runs_no_property() -> None:
    Guarded.reads = 0
    guarded = Guarded()

    assert callee_while_running(guarded.wait) is None
    assert Guarded.reads == 1


def python_callee_frame() -> Any:
    def inner() -> Any:
        return sys._getframe(1)

    return inner()


def test_callee_of_python_function_is_none() -> None:
    assert called_c_function(python_callee_frame()) is None


class Scorer:
    def score(self) -> str:
        frame = sys._getframe()
        return frame_identifier(frame.f_code, frame.f_lasti)


def test_identifier_has_class_and_line() -> None:
    identifier = Scorer().score()
    function, file, rest = identifier.split("\x00")
    first_line, *attributes = rest.split("\x01")

    assert function == "score"
    assert file == __file__
    assert int(first_line) == Scorer.score.__code__.co_firstlineno
    assert "cScorer" in attributes
    assert any(a.startswith("l") and int(a[1:]) > int(first_line) for a in attributes)


def test_line_at_offset_zero_is_first_line() -> None:
    code = Scorer.score.__code__
    assert line_at(code, 0) == code.co_firstlineno


def sample_while(work: Callable[[], object], frame_stages: dict[int, list[str]] | None) -> Any:
    sampler = StackSampler(0.001, frame_stages)
    sampler.start()
    try:
        work()
    finally:
        sampled = sampler.stop()
    return frame_records(sampled, threading.main_thread().ident or 0)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_samples_are_weighted_by_wall_time() -> None:
    records, _ = sample_while(lambda: spin(0.3), None)
    total = sum(seconds for _, seconds in records)

    assert len(records) > 20
    assert 0.2 < total < 0.6


def test_samples_carry_open_stage() -> None:
    recorder = markers.Recorder(frame_stages={})
    previous = markers.install(recorder)

    def work() -> None:
        with aitax.stage("inference"):
            spin(0.2)
        spin(0.1)

    try:
        records, stages = sample_while(work, recorder.frame_stages)
    finally:
        markers.install(previous)
    inside = sum(s for (_, s), stage in zip(records, stages, strict=True) if stage == "inference")
    outside = sum(s for (_, s), stage in zip(records, stages, strict=True) if stage is None)

    assert 0.12 < inside < 0.4
    assert outside > 0.04
    assert recorder.frame_stages == {}


def recurse(depth: int) -> None:
    if depth == 0:
        spin(0.2)
        return
    recurse(depth - 1)


def test_deep_stack_is_elided() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        records, _ = sample_while(lambda: recurse(2000), None)
    finally:
        sys.setrecursionlimit(limit)
    deep = [stack for stack, _ in records if any(ELIDED_FILE in frame for frame in stack)]

    assert deep
    # The thread's own frame, the kept frames and the elision marker.
    assert all(len(stack) <= 1 + MAX_LEAF_FRAMES + MAX_ROOT_FRAMES + 2 for stack in deep)


def test_other_threads_are_sampled() -> None:
    def work() -> None:
        worker = threading.Thread(target=spin, args=(0.3,), name="scoring-worker")
        worker.start()
        worker.join()

    records, _ = sample_while(work, None)
    roots = {stack[0].split("\x00")[0] for stack, _ in records}

    assert "scoring-worker" in roots
    assert not any(root.startswith("aitax-") for root in roots)
