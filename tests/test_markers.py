"""The stage and request markers, timed with injected clocks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

import aitax
from aitax import markers


class FakeClock:
    """A clock, in nanoseconds, that moves only when a test calls `advance`."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder(clock: FakeClock) -> Iterator[markers.Recorder]:
    recorder = markers.Recorder(clock=clock, cpu_clock=clock)
    markers.install(recorder)
    yield recorder
    markers.install(None)


def test_stage_records_span(recorder: markers.Recorder, clock: FakeClock) -> None:
    with aitax.stage("inference"):
        clock.advance(5_000)

    [event] = recorder.stages
    assert event.name == "inference"
    assert event.end_ns - event.start_ns == 5_000
    assert event.cpu_ns == 5_000
    assert event.child_ns == 0


def test_nested_stage_time_counts_in_child(recorder: markers.Recorder, clock: FakeClock) -> None:
    with aitax.stage("feature_fetch"):
        clock.advance(1_000)
        with aitax.stage("feature_compute"):
            clock.advance(3_000)
        clock.advance(2_000)

    inner, outer = recorder.stages
    assert inner.name == "feature_compute"
    assert outer.name == "feature_fetch"
    assert outer.end_ns - outer.start_ns == 6_000
    assert outer.child_ns == 3_000
    assert outer.child_cpu_ns == 3_000


def test_stage_as_decorator(recorder: markers.Recorder, clock: FakeClock) -> None:
    @aitax.stage("inference")
    def predict(x: int) -> int:
        clock.advance(7)
        return x * 2

    assert predict(21) == 42
    assert predict.__name__ == "predict"
    assert [event.name for event in recorder.stages] == ["inference"]


def test_stage_decorates_coroutine(recorder: markers.Recorder, clock: FakeClock) -> None:
    @aitax.stage("feature_fetch")
    async def fetch() -> str:
        assert aitax.current_stage() == "feature_fetch"
        clock.advance(10)
        return "row"

    assert asyncio.run(fetch()) == "row"
    assert [event.name for event in recorder.stages] == ["feature_fetch"]
    assert recorder.stages[0].end_ns - recorder.stages[0].start_ns == 10


def test_stage_is_task_local(recorder: markers.Recorder) -> None:
    seen: dict[str, str | None] = {}

    async def task(name: str) -> None:
        with aitax.stage(name):
            await asyncio.sleep(0)
            seen[name] = aitax.current_stage()

    async def main() -> None:
        await asyncio.gather(task("feature_fetch"), task("inference"))

    asyncio.run(main())
    assert seen == {"feature_fetch": "feature_fetch", "inference": "inference"}


def test_stage_is_thread_local(recorder: markers.Recorder) -> None:
    barrier = threading.Barrier(2)
    seen: dict[str, str | None] = {}

    def worker(name: str) -> None:
        with aitax.stage(name):
            barrier.wait()
            seen[name] = aitax.current_stage()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("logging", "inference")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"logging": "logging", "inference": "inference"}
    assert len({event.thread_id for event in recorder.stages}) == 2


def test_request_records_size_and_links_stages(
    recorder: markers.Recorder, clock: FakeClock
) -> None:
    with aitax.request(size=8), aitax.stage("inference"):
        clock.advance(100)

    [request] = recorder.requests
    [stage] = recorder.stages
    assert request.size == 8
    assert request.end_ns - request.start_ns == 100
    assert stage.request_id == request.request_id


@pytest.mark.parametrize("size", [0, -3, 2.5, "8", True, None])
def test_request_rejects_invalid_size(size: object) -> None:
    with pytest.raises(ValueError, match=f"request size {size!r} is invalid"):
        aitax.request(size=size)  # type: ignore[arg-type]


def test_markers_do_nothing_without_recorder() -> None:
    assert markers.active_recorder() is None
    with aitax.request(), aitax.stage("inference"):
        assert aitax.current_stage() is None


def test_exception_still_closes_stage(recorder: markers.Recorder) -> None:
    with pytest.raises(RuntimeError), aitax.stage("inference"):
        raise RuntimeError("model failed")
    assert aitax.current_stage() is None
    assert [event.name for event in recorder.stages] == ["inference"]


def test_fetch_key_is_recorded(recorder: markers.Recorder) -> None:
    for key in (1, 2, 1):
        with aitax.stage("feature_fetch", key=key):
            pass
    assert [event.key for event in recorder.stages] == [1, 2, 1]


def test_stage_rejects_invalid_name() -> None:
    for name in (None, 3, ""):
        with pytest.raises(ValueError, match="stage name"):
            aitax.stage(name)  # type: ignore[arg-type]


def test_stage_decorates_generator_per_step(recorder: markers.Recorder, clock: FakeClock) -> None:
    @aitax.stage("feature_fetch")
    def rows(count: int) -> Iterator[int]:
        for index in range(count):
            clock.advance(10)
            yield index

    consumed = []
    for row in rows(3):
        assert aitax.current_stage() is None
        clock.advance(1_000)
        consumed.append(row)

    assert consumed == [0, 1, 2]
    assert [event.end_ns - event.start_ns for event in recorder.stages] == [10, 10, 10, 0]


def test_stage_decorates_async_generator(recorder: markers.Recorder) -> None:
    @aitax.stage("inference")
    async def scores(count: int):  # type: ignore[no-untyped-def]
        for index in range(count):
            assert aitax.current_stage() == "inference"
            yield index

    async def main() -> list[int]:
        return [score async for score in scores(2)]

    assert asyncio.run(main()) == [0, 1]
    assert {event.name for event in recorder.stages} == {"inference"}
