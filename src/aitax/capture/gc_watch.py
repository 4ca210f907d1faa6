"""Garbage-collection pauses, timed through `gc.callbacks` and added up per request.

Each collection costs two calls of a small callback, so the watch runs in the
clean timing pass too. Pauses are not kept one by one. Each is added to the
request open in the thread that triggered the collection and to its
generation's totals, so the record grows with the requests, not the collections.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aitax.markers import current_request_id

GENERATIONS = 3


@dataclass
class GcRecord:
    """Collections of one pass. Pauses are wall time in nanoseconds unless named CPU.

    `by_request` maps a request id to its total pause, its generation-2 pause,
    and the CPU time of that generation-2 pause in the collecting thread. CPU
    time leaves out the time a busy machine gave to other processes.
    `outside_requests_ns` is the pause time while no request was open.
    """

    counts: list[int]
    pause_ns: list[int]
    max_pause_ns: int
    max_pause_generation: int | None
    by_request: dict[int, tuple[int, int, int]]
    outside_requests_ns: int


@dataclass
class GcWatch:
    """Time every collection with `gc.callbacks`."""

    clock: Callable[[], int] = time.perf_counter_ns
    cpu_clock: Callable[[], int] = time.thread_time_ns
    counts: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    pause_ns: list[int] = field(default_factory=lambda: [0] * GENERATIONS)
    max_pause_ns: int = 0
    max_pause_generation: int | None = None
    by_request: dict[int, list[int]] = field(default_factory=dict)
    outside_requests_ns: int = 0
    _started_ns: int = 0
    _started_cpu_ns: int = 0

    def install(self) -> None:
        gc.callbacks.append(self._on_collection)

    def stop(self) -> dict[str, Any]:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        return {
            "counts": self.counts,
            "pause_ns": self.pause_ns,
            "max_pause_ns": self.max_pause_ns,
            "max_pause_generation": self.max_pause_generation,
            "by_request": [[request, *pauses] for request, pauses in self.by_request.items()],
            "outside_requests_ns": self.outside_requests_ns,
        }

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = self.clock()
            self._started_cpu_ns = self.cpu_clock()
            return
        pause = self.clock() - self._started_ns
        pause_cpu = self.cpu_clock() - self._started_cpu_ns
        generation = int(info.get("generation", 0))
        self.counts[generation] += 1
        self.pause_ns[generation] += pause
        if pause > self.max_pause_ns:
            self.max_pause_ns = pause
            self.max_pause_generation = generation
        self._add_to_request(pause, pause_cpu, generation)

    def _add_to_request(self, pause: int, pause_cpu: int, generation: int) -> None:
        request = current_request_id()
        if request is None:
            self.outside_requests_ns += pause
            return
        totals = self.by_request.get(request)
        if totals is None:
            totals = self.by_request[request] = [0, 0, 0]
        totals[0] += pause
        if generation == GENERATIONS - 1:
            totals[1] += pause
            totals[2] += pause_cpu


def read_gc_record(data: object) -> GcRecord | None:
    """Rebuild a pass's GC record from its JSON form; None when the pass has none."""
    if not isinstance(data, dict):
        return None
    return GcRecord(
        counts=[int(count) for count in data["counts"]],
        pause_ns=[int(pause) for pause in data["pause_ns"]],
        max_pause_ns=int(data["max_pause_ns"]),
        max_pause_generation=data.get("max_pause_generation"),
        by_request={
            int(row[0]): (int(row[1]), int(row[2]), int(row[3])) for row in data["by_request"]
        },
        outside_requests_ns=int(data["outside_requests_ns"]),
    )
