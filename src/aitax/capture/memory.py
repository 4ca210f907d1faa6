"""The memory pass: memray records every allocation, with stage boundaries marked in the stream.

memray's records carry stacks but no stage. At each stage or request boundary
this pass makes one small allocation from `_memray_boundary`. The analysis
finds those records in order and pairs them with the boundary log written
here. Every allocation between two boundaries then belongs to the stage open there.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import memray

from aitax.capture.capture_file import write_json_atomic
from aitax.capture.passes import BasePass
from aitax.markers import Recorder
from aitax.redact import redact_argv

logger = logging.getLogger(__name__)

CAPTURE_FILE = "memory.bin"
BOUNDARIES_FILE = "memory-boundaries.json"
BOUNDARY_FUNCTION = "_memray_boundary"
# Large enough that Python's small-object allocator passes it to malloc, which memray records.
BOUNDARY_BYTES = 4096


def _memray_boundary() -> None:
    bytearray(BOUNDARY_BYTES)


class MemoryPass(BasePass):
    """Run the target inside a memray Tracker and log stage boundaries."""

    def __init__(self, out_dir: Path, native: bool) -> None:
        self.out_dir = out_dir
        self.native = native
        self.boundaries: list[tuple[str, str, bool, int]] = []
        self.tracker: memray.Tracker | None = None

    def _on_boundary(self, kind: str, name: str, entering: bool) -> None:
        self.boundaries.append((kind, name, entering, threading.get_ident()))
        _memray_boundary()

    def start(self, recorder: Recorder) -> None:
        path = self.out_dir / CAPTURE_FILE
        path.unlink(missing_ok=True)
        # memray stores the command line in the capture and shows it in its flame
        # graph, so it gets the arguments with secret-looking values redacted.
        argv = sys.argv
        sys.argv = redact_argv(argv)
        try:
            self.tracker = memray.Tracker(str(path), native_traces=self.native)
            self.tracker.__enter__()
        finally:
            sys.argv = argv
        recorder.listener = self._on_boundary

    def stop(self, out_dir: Path) -> dict[str, Any]:
        if self.tracker is not None:
            self.tracker.__exit__(None, None, None)
        write_json_atomic(out_dir / BOUNDARIES_FILE, self.boundaries)
        logger.debug("memory pass logged %d boundaries", len(self.boundaries))
        return {
            "memray_file": CAPTURE_FILE,
            "boundaries": BOUNDARIES_FILE,
            "native_traces": self.native,
        }
