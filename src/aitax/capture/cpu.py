"""The CPU pass: pyinstrument samples, each labelled with the stage active when it was taken."""

from __future__ import annotations

import logging
import sys
import threading
import types
from pathlib import Path
from typing import Any

from pyinstrument import Profiler, stack_sampler
from pyinstrument.low_level.stat_profile import get_frame_info

from aitax.capture.passes import BasePass
from aitax.markers import Recorder, current_stage

logger = logging.getLogger(__name__)

SESSION_FILE = "cpu.pyisession"
LABELS_FILE = "cpu-stages.json"


# Deeper stacks keep this many frames at the leaf and at the root, with one
# "[N frames elided]" frame between. pyinstrument stores every frame of every
# sample, so a recursion thousands of frames deep would otherwise make each
# sample cost milliseconds and the session gigabytes.
MAX_LEAF_FRAMES = 200
MAX_ROOT_FRAMES = 50
ELIDED_FILE = "<aitax>"


def bounded_call_stack(frame: types.FrameType | None, event: str, arg: Any) -> list[str]:
    """Build pyinstrument's call stack (root first), with the middle of very deep stacks elided."""
    leaf: list[str] = []
    if event == "call":
        frame = frame.f_back if frame else None
    elif event in ("c_return", "c_exception"):
        name = getattr(arg, "__qualname__", getattr(arg, "__name__", "<built-in>"))
        leaf.append(f"{name}\x00<built-in>\x000")

    frames: list[types.FrameType] = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back

    get_info = get_frame_info
    if len(frames) > MAX_LEAF_FRAMES + MAX_ROOT_FRAMES:
        elided = len(frames) - MAX_LEAF_FRAMES - MAX_ROOT_FRAMES
        leaf.extend(get_info(f) for f in frames[:MAX_LEAF_FRAMES])
        leaf.append(f"[{elided} frames elided]\x00{ELIDED_FILE}\x000")
        leaf.extend(get_info(f) for f in frames[-MAX_ROOT_FRAMES:])
    else:
        leaf.extend(get_info(f) for f in frames)

    thread = threading.current_thread()
    leaf.append(f"{thread.name}\x00<thread>\x00{thread.ident}")
    leaf.reverse()
    return leaf


class StageLabellingProfiler(Profiler):
    """A pyinstrument profiler that also records the current stage of every sample.

    pyinstrument calls `_sampler_saw_call_stack` in the sampled thread, so the
    stage context variable read there is that thread's or task's own stage.
    `labels[i]` belongs to `last_session.frame_records[i]`.
    """

    def __init__(self, interval: float) -> None:
        super().__init__(interval=interval, async_mode="enabled")
        self.labels: list[str | None] = []

    def _sampler_saw_call_stack(
        self, call_stack: list[str], time_since_last_sample: float, async_state: Any
    ) -> None:
        session = self._active_session
        before = 0 if session is None else len(session.frame_records)
        super()._sampler_saw_call_stack(call_stack, time_since_last_sample, async_state)
        if session is not None and len(session.frame_records) > before:
            self.labels.append(current_stage())


class CpuPass(BasePass):
    """Sample every thread with pyinstrument, and save one session for all of them.

    pyinstrument samples the thread that starts it. Threads that the target starts
    get a profiler of their own, which a `threading.setprofile` hook starts as the
    thread begins. Their samples join the main thread's when the pass ends.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.profiler = StageLabellingProfiler(interval)
        self.thread_profilers: list[StageLabellingProfiler] = []
        self.lock = threading.Lock()

    def _start_in_thread(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profiler = StageLabellingProfiler(self.interval)
        try:
            profiler.start(target_description=f"aitax CPU pass, {threading.current_thread().name}")
        except (RuntimeError, ValueError) as error:
            logger.warning("cannot sample thread %s: %s", threading.current_thread().name, error)
            return
        with self.lock:
            self.thread_profilers.append(profiler)

    def start(self, recorder: Recorder) -> None:
        stack_sampler.build_call_stack = bounded_call_stack
        threading.setprofile(self._start_in_thread)
        self.profiler.start(target_description="aitax CPU pass")
        self.hook = sys.getprofile()

    def stop(self, out_dir: Path) -> dict[str, Any]:
        from aitax.capture.capture_file import write_json_atomic

        threading.setprofile(None)
        # A target that calls sys.setprofile replaces pyinstrument's hook in that thread.
        displaced = sys.getprofile() is not self.hook
        if displaced:
            logger.warning("the target replaced the CPU profiler's hook; later samples are missing")
        session = self.profiler.stop()
        labels = list(self.profiler.labels[: len(session.frame_records)])
        thread_records, thread_labels = self._thread_samples()
        session.frame_records.extend(thread_records)
        labels.extend(thread_labels)
        session.sample_count = len(session.frame_records)

        session_path = out_dir / SESSION_FILE
        tmp_path = session_path.with_name(f".{SESSION_FILE}.tmp")
        session.save(tmp_path)
        tmp_path.replace(session_path)
        write_json_atomic(out_dir / LABELS_FILE, labels)
        logger.debug(
            "CPU pass kept %d samples from %d threads", len(labels), 1 + len(self.thread_profilers)
        )
        return {
            "session": SESSION_FILE,
            "labels": LABELS_FILE,
            "sample_count": len(labels),
            "threads": 1 + len(self.thread_profilers),
            "hook_displaced": displaced,
        }

    def _thread_samples(self) -> tuple[list[Any], list[str | None]]:
        """Collect what the other threads' profilers recorded, whether or not their threads ended.

        A profiler can only be stopped from its own thread, so the records are read
        from its active session instead.
        """
        records: list[Any] = []
        labels: list[str | None] = []
        with self.lock:
            profilers = list(self.thread_profilers)
        for profiler in profilers:
            session = profiler._active_session
            if session is None:
                continue
            count = min(len(session.frame_records), len(profiler.labels))
            records.extend(session.frame_records[:count])
            labels.extend(profiler.labels[:count])
        return records, labels
