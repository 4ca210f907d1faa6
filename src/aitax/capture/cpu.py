"""The CPU pass: stack samples of every thread, each labelled with the stage open in its stack.

The samples are saved as a pyinstrument session, which the analysis and the
CPU views (pyinstrument's HTML, cProfile's .prof, speedscope, Chrome trace)
read. `benchmarks/run.py` measures this sampler against pyinstrument's profile
hook, which the pass used before and which cost 2.4x on call-heavy code.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pyinstrument.session import Session

from aitax.capture.passes import BasePass
from aitax.capture.sampler import THREAD_FILE, StackSampler, frame_records, stack_identifiers
from aitax.markers import Recorder

logger = logging.getLogger(__name__)

SESSION_FILE = "cpu.pyisession"
LABELS_FILE = "cpu-stages.json"

# The sampler takes the GIL as soon as a running thread gives it up. A thread
# running Python code gives it up when it blocks (I/O, a lock) or when another
# thread has waited for the switch interval, 5 ms by default. Samples would
# gather at the blocking calls, so the pass shortens the switch interval to
# take each sample close to the time it was due.
SWITCH_INTERVAL = 0.0001


class CpuPass(BasePass):
    """Sample every thread's stack from a background thread, and save one session for all.

    Stage labels come from the frames that opened a `with aitax.stage(...)`
    block: the recorder notes them, and a sample takes the innermost one in its
    stack. A stage opened in one thread does not label work that another thread
    does for it.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sampler: StackSampler | None = None
        self.start_time = 0.0
        self.start_cpu = 0.0
        self.start_stack: list[str] = []

    def start(self, recorder: Recorder) -> None:
        recorder.frame_stages = {}
        self.sampler = StackSampler(self.interval, recorder.frame_stages)
        self.start_stack = _current_stack(sys._getframe(1))
        self.start_time = time.time()
        self.start_cpu = time.process_time()
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self.switch_interval, SWITCH_INTERVAL))
        self.sampler.start()

    def stop(self, out_dir: Path) -> dict[str, Any]:
        from aitax.capture.capture_file import write_json_atomic

        assert self.sampler is not None, "stop() called before start()"
        sampled = self.sampler.stop()
        sys.setswitchinterval(self.switch_interval)
        main_ident = threading.main_thread().ident or 0
        records, labels = frame_records(sampled, main_ident)
        session = Session(
            frame_records=records,
            start_time=self.start_time,
            duration=time.time() - self.start_time,
            min_interval=self.interval,
            max_interval=self.interval,
            sample_count=len(records),
            start_call_stack=self.start_stack,
            target_description="aitax CPU pass",
            cpu_time=time.process_time() - self.start_cpu,
            sys_path=list(sys.path),
            sys_prefixes=Session.current_sys_prefixes(),
        )

        session_path = out_dir / SESSION_FILE
        tmp_path = session_path.with_name(f".{SESSION_FILE}.tmp")
        session.save(tmp_path)
        tmp_path.replace(session_path)
        write_json_atomic(out_dir / LABELS_FILE, labels)
        logger.debug(
            "CPU pass kept %d samples from %d threads", len(labels), len(sampled.thread_names)
        )
        return {
            "session": SESSION_FILE,
            "labels": LABELS_FILE,
            "sample_count": len(labels),
            "threads": len({ident for ident, _, _, _ in sampled.samples}),
            "sampler": "thread",
            "sampler_cpu_s": self.sampler.sampler_cpu_s,
            "sampler_errors": self.sampler.errors,
        }


def _current_stack(frame: Any) -> list[str]:
    """Return the identifiers of the stack that starts the pass, for pyinstrument's trimming."""
    code_ids: list[int] = []
    offsets: list[int] = []
    codes = {}
    while frame is not None:
        codes[id(frame.f_code)] = frame.f_code
        code_ids.append(id(frame.f_code))
        offsets.append(frame.f_lasti)
        frame = frame.f_back
    thread = threading.current_thread()
    identifiers = stack_identifiers((None, tuple(code_ids), tuple(offsets)), codes)
    return [f"{thread.name}\x00{THREAD_FILE}\x00{thread.ident}", *identifiers]
