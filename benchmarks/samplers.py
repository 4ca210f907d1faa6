"""Run a script under one of three in-process CPU samplers, to compare what each costs.

    python benchmarks/samplers.py thread|signal|hook OUTPUT SCRIPT [ARGS...]

- thread: aitax's sampling thread over `sys._current_frames()`, as the CPU pass
  runs it (with the shortened GIL switch interval), without the rest of aitax.
- signal: a SIGALRM timer every millisecond whose handler reads the main
  thread's stack, stored the same cheap way as the thread sampler stores it.
  It samples only the main thread, so it is a lower bound for this design.
- hook: pyinstrument's profile hook, which the CPU pass used before the thread.

Every sampler runs at a 1 ms interval and writes its sample count to OUTPUT,
so that the comparison includes keeping the samples.
"""

from __future__ import annotations

import runpy
import signal
import sys
import time
import types
from pathlib import Path
from typing import Any

from aitax.capture.cpu import SWITCH_INTERVAL
from aitax.capture.sampler import StackSampler

INTERVAL_S = 0.001
SAMPLERS = ("thread", "signal", "hook")


class SignalSampler:
    """Samples the main thread's stack from a SIGALRM handler."""

    def __init__(self) -> None:
        self.samples: list[tuple[tuple[int, ...], float]] = []
        self.last = time.perf_counter()

    def start(self) -> None:
        signal.signal(signal.SIGALRM, self._handle)
        signal.setitimer(signal.ITIMER_REAL, INTERVAL_S, INTERVAL_S)

    def stop(self) -> int:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return len(self.samples)

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        now = time.perf_counter()
        parts: list[int] = []
        while frame is not None:
            parts.append(id(frame.f_code))
            parts.append(frame.f_lasti)
            frame = frame.f_back
        self.samples.append((tuple(parts), now - self.last))
        self.last = now


def start(kind: str) -> Any:
    if kind == "thread":
        sys.setswitchinterval(SWITCH_INTERVAL)
        sampler = StackSampler(INTERVAL_S, None)
        sampler.start()
        return sampler
    if kind == "signal":
        signal_sampler = SignalSampler()
        signal_sampler.start()
        return signal_sampler
    from pyinstrument import Profiler

    profiler = Profiler(interval=INTERVAL_S, async_mode="enabled")
    profiler.start()
    return profiler


def stop(kind: str, sampler: Any) -> int:
    if kind == "thread":
        return len(sampler.stop().samples)
    if kind == "signal":
        return int(sampler.stop())
    return len(sampler.stop().frame_records)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in SAMPLERS:
        print(__doc__, file=sys.stderr)
        return 2
    kind, output, script = argv[0], Path(argv[1]), argv[2]
    sys.argv = [script, *argv[3:]]
    sys.path.insert(0, str(Path(script).resolve().parent))

    sampler = start(kind)
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        count = stop(kind, sampler)
    output.write_text(f"{count}\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
