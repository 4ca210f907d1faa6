"""The CPU pass: pyinstrument samples, each labelled with the stage active when it was taken."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

from aitax.capture.passes import BasePass
from aitax.markers import Recorder, current_stage

logger = logging.getLogger(__name__)

SESSION_FILE = "cpu.pyisession"
LABELS_FILE = "cpu-stages.json"


class StageLabellingProfiler(Profiler):  # type: ignore[misc]
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
    """Start pyinstrument before the target runs, and save its session after."""

    def __init__(self, interval: float) -> None:
        self.profiler = StageLabellingProfiler(interval)

    def start(self, recorder: Recorder) -> None:
        self.profiler.start(target_description="aitax CPU pass")

    def stop(self, out_dir: Path) -> dict[str, Any]:
        from aitax.capture.capture_file import write_json_atomic

        session = self.profiler.stop()
        labels = self.profiler.labels[: len(session.frame_records)]
        session_path = out_dir / SESSION_FILE
        tmp_path = session_path.with_name(f".{SESSION_FILE}.tmp")
        session.save(tmp_path)
        tmp_path.replace(session_path)
        write_json_atomic(out_dir / LABELS_FILE, labels)
        logger.debug("CPU pass kept %d samples", len(labels))
        return {"session": SESSION_FILE, "labels": LABELS_FILE, "sample_count": len(labels)}
