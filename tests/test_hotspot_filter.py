"""Hotspots list the target's code only: no pseudo-frames, aitax frames or idle waits."""

from __future__ import annotations

import os

from aitax.analysis.classify import IDLE, classify
from aitax.analysis.frames import AITAX_DIR, FrameInfo
from aitax.analysis.hotspots import rank_hotspots
from aitax.analysis.samples import Sample

THREAD_ROOT = FrameInfo("MainThread", "<thread>", 140, None, False, False)
ELIDED = FrameInfo("[40 frames elided]", "<aitax>", 0, None, False, False)
MODULE = FrameInfo("<module>", "/srv/app/pipeline.py", 1, None, True, False)
HANDLE = FrameInfo("handle", "/srv/app/pipeline.py", 20, None, True, False)
MARKER = FrameInfo("_Stage.__enter__", os.path.join(AITAX_DIR, "markers.py"), 80, None, True, False)


def builtin(function: str) -> FrameInfo:
    return FrameInfo(function, "<built-in>", 0, None, False, True)


def sample(*frames: FrameInfo, seconds: float = 0.01, stage: str = "inference") -> Sample:
    return Sample(tuple(frames), seconds, stage, stage)


def _functions(samples: list[Sample]) -> list[str]:
    return [hotspot.function for hotspot in rank_hotspots(samples)]


def test_pseudo_frames_are_not_hotspots() -> None:
    samples = [sample(THREAD_ROOT, MODULE, ELIDED, HANDLE, builtin("sum"))]

    functions = _functions(samples)

    assert "MainThread" not in functions
    assert "[40 frames elided]" not in functions
    assert functions == ["sum", "<module>", "handle"]


def test_aitax_frames_and_their_builtins_are_not_hotspots() -> None:
    samples = [
        sample(THREAD_ROOT, MODULE, MARKER, builtin("ContextVar.set"), seconds=0.05),
        sample(THREAD_ROOT, MODULE, MARKER, builtin("thread_time_ns"), seconds=0.05),
        sample(THREAD_ROOT, MODULE, HANDLE, builtin("sum"), seconds=0.01),
    ]

    hotspots = rank_hotspots(samples)
    functions = [hotspot.function for hotspot in hotspots]

    assert "ContextVar.set" not in functions
    assert "thread_time_ns" not in functions
    assert "_Stage.__enter__" not in functions
    assert functions[0] == "sum"
    assert hotspots[0].self_s == 0.01


def test_builtin_called_by_target_stays() -> None:
    samples = [sample(THREAD_ROOT, MODULE, builtin("ContextVar.set"))]

    assert _functions(samples)[0] == "ContextVar.set"


def test_idle_waits_are_not_hotspots() -> None:
    waits = [
        (THREAD_ROOT, MODULE, builtin("epoll.poll")),
        (THREAD_ROOT, MODULE, HANDLE, builtin("lock.acquire")),
    ]
    samples = [Sample(frames, 0.5, None, classify(list(frames[1:]))) for frames in waits]
    samples.append(sample(THREAD_ROOT, MODULE, HANDLE, builtin("sum"), seconds=0.01))

    assert [item.stage for item in samples[:2]] == [IDLE, IDLE]
    functions = _functions(samples)
    assert "epoll.poll" not in functions
    assert "lock.acquire" not in functions
    assert functions[0] == "sum"


def test_blocking_call_in_marked_stage_stays() -> None:
    # A sleep inside a marked stage is that stage's time, not a wait for work.
    samples = [sample(THREAD_ROOT, MODULE, HANDLE, builtin("sleep"), stage="feature_fetch")]

    hotspots = rank_hotspots(samples)

    assert hotspots[0].function == "sleep"
    assert hotspots[0].stage == "feature_fetch"
