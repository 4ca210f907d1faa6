"""A sampling thread that reads the Python stack of every thread with `sys._current_frames()`.

A profile hook (`sys.setprofile`, which pyinstrument installs) runs on every
call and return, and makes call-heavy code two to three times slower. This
sampler costs nothing between samples: it wakes every `interval` seconds, takes
the GIL, copies each thread's stack as (code object, last instruction) pairs and
goes back to sleep. Stacks are turned into pyinstrument's frame identifiers only
once, when the pass ends, so that the CPU views built on pyinstrument keep working.

While another thread runs Python code, the sampler waits for the GIL for up to
the interpreter's switch interval (5 ms by default), so Python-heavy code is
sampled less often than `interval` asks. Each sample is weighted by the wall
time since the previous one, so the totals stay right.
"""

from __future__ import annotations

import bisect
import logging
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from functools import lru_cache

from aitax.capture.callee import called_c_function

logger = logging.getLogger(__name__)

# Deeper stacks keep this many frames at the leaf and at the root, with one
# "[N frames elided]" frame between, so that a recursion thousands of frames
# deep neither makes each sample slow nor the session huge.
MAX_LEAF_FRAMES = 200
MAX_ROOT_FRAMES = 50
ELIDED_FILE = "<aitax>"
BUILTIN_FILE = "<built-in>"
THREAD_FILE = "<thread>"
# Threads whose name starts with this prefix belong to aitax and are not sampled.
OWN_THREAD_PREFIX = "aitax-"

# A stack as sampled: the name of the C function the leaf calls (or None), then
# (id of the code object, last instruction offset) pairs from the leaf to the
# root. An elided run of frames is the pair (None, number of frames).
StackKey = tuple[object, ...]
FrameRecord = tuple[list[str], float]


@dataclass
class SampledStacks:
    """Samples in the order they were taken: (thread id, stack index, seconds, stage)."""

    samples: list[tuple[int, int, float, str | None]] = field(default_factory=list)
    stacks: list[StackKey] = field(default_factory=list)
    thread_names: dict[int, str] = field(default_factory=dict)
    codes: dict[int, types.CodeType] = field(default_factory=dict)


class StackSampler:
    """Samples all threads but its own every `interval` seconds, until `stop`."""

    def __init__(self, interval: float, frame_stages: dict[int, list[str]] | None) -> None:
        self.interval = interval
        self.frame_stages = frame_stages
        self.result = SampledStacks()
        self.errors = 0
        self.sampler_cpu_s = 0.0
        self._stack_index: dict[StackKey, int] = {}
        self._callees: dict[tuple[int | None, int | None], str | None] = {}
        self._ignored: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aitax-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> SampledStacks:
        """Stop sampling and return what was sampled; call it once."""
        self._stop.set()
        self._thread.join()
        return self.result

    def _run(self) -> None:
        self._ignored.add(threading.get_ident())
        last = time.perf_counter()
        while not self._stop.wait(self.interval):
            now = time.perf_counter()
            try:
                self._sample(now - last)
            except Exception:
                # A sampler error must not end the pass. Count it, log the first.
                self.errors += 1
                if self.errors == 1:
                    logger.exception("the CPU sampler failed to read a stack; it goes on")
            last = now
        self.sampler_cpu_s = time.thread_time()

    def _sample(self, seconds: float) -> None:
        for ident, frame in sys._current_frames().items():
            if ident in self._ignored:
                continue
            if ident not in self.result.thread_names and not self._name_thread(ident):
                continue
            key, stage = self._read_stack(frame)
            index = self._stack_index.get(key)
            if index is None:
                index = len(self.result.stacks)
                self._stack_index[key] = index
                self.result.stacks.append(key)
            self.result.samples.append((ident, index, seconds, stage))

    def _name_thread(self, ident: int) -> bool:
        """Record the name of a newly seen thread; return False for aitax's own threads."""
        thread = next((t for t in threading.enumerate() if t.ident == ident), None)
        name = thread.name if thread is not None else f"Thread-{ident}"
        if name.startswith(OWN_THREAD_PREFIX):
            self._ignored.add(ident)
            return False
        self.result.thread_names[ident] = name
        return True

    def _read_stack(self, leaf: types.FrameType) -> tuple[StackKey, str | None]:
        # Code objects hash slowly (their whole bytecode and constants), so stacks
        # are keyed by id(code), and `codes` keeps each one alive.
        parts: list[int | None] = []
        codes = self.result.codes
        stage: str | None = None
        frame_stages = self.frame_stages
        frame: types.FrameType | None = leaf
        while frame is not None:
            code = frame.f_code
            code_id = id(code)
            if code_id not in codes:
                codes[code_id] = code
            parts.append(code_id)
            parts.append(frame.f_lasti)
            if stage is None and frame_stages:
                stage = _innermost_stage(frame_stages, id(frame))
            frame = frame.f_back

        if len(parts) > 2 * (MAX_LEAF_FRAMES + MAX_ROOT_FRAMES):
            elided = len(parts) // 2 - MAX_LEAF_FRAMES - MAX_ROOT_FRAMES
            parts = [*parts[: 2 * MAX_LEAF_FRAMES], None, elided, *parts[-2 * MAX_ROOT_FRAMES :]]
        return (self._callee(leaf, parts[0], parts[1]), *parts), stage

    def _callee(self, leaf: types.FrameType, code_id: int | None, offset: int | None) -> str | None:
        site = (code_id, offset)
        if site not in self._callees:
            self._callees[site] = called_c_function(leaf)
        return self._callees[site]


def _innermost_stage(frame_stages: dict[int, list[str]], frame_id: int) -> str | None:
    names = frame_stages.get(frame_id)
    try:
        return names[-1] if names else None
    except IndexError:
        # The sampled thread closed the stage while this one read it.
        return None


def frame_records(
    sampled: SampledStacks, main_ident: int
) -> tuple[list[FrameRecord], list[str | None]]:
    """Return pyinstrument frame records and their stages, one thread after another.

    pyinstrument's records of one thread follow each other in time, and the CPU
    views lay them out in that order, so the samples are grouped by thread with
    the main thread first.
    """
    by_thread: dict[int, list[tuple[int, float, str | None]]] = {}
    for ident, index, seconds, stage in sampled.samples:
        by_thread.setdefault(ident, []).append((index, seconds, stage))
    order = sorted(by_thread, key=lambda ident: ident != main_ident)

    records: list[FrameRecord] = []
    stages: list[str | None] = []
    for ident in order:
        thread_frame = f"{sampled.thread_names[ident]}\x00{THREAD_FILE}\x00{ident}"
        built: dict[int, list[str]] = {}
        for index, seconds, stage in by_thread[ident]:
            stack = built.get(index)
            if stack is None:
                stack = [thread_frame, *stack_identifiers(sampled.stacks[index], sampled.codes)]
                built[index] = stack
            records.append((stack, seconds))
            stages.append(stage)
    return records, stages


def stack_identifiers(key: StackKey, codes: dict[int, types.CodeType]) -> list[str]:
    """Return the frame identifiers of a sampled stack, root first."""
    callee, *parts = key
    identifiers: list[str] = []
    for position in range(len(parts) - 2, -1, -2):
        code_id, offset = parts[position], parts[position + 1]
        assert isinstance(offset, int)
        if code_id is None:
            identifiers.append(f"[{offset} frames elided]\x00{ELIDED_FILE}\x000")
        else:
            assert isinstance(code_id, int)
            identifiers.append(frame_identifier(codes[code_id], offset))
    if callee is not None:
        identifiers.append(f"{callee}\x00{BUILTIN_FILE}\x000")
    return identifiers


@lru_cache(maxsize=65536)
def frame_identifier(code: types.CodeType, offset: int) -> str:
    """Return pyinstrument's identifier: "function\\0file\\0first line", class and current line.

    The class is the one that the function's qualified name places it in, which
    pyinstrument would read from `self` or `cls` at run time instead.
    """
    identifier = f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"
    owner, _, last = code.co_qualname.rpartition(".")
    if owner and last == code.co_name and not owner.endswith(">"):
        identifier += f"\x01c{owner.rpartition('.')[2]}"
    line = line_at(code, offset)
    if line is not None:
        identifier += f"\x01l{line}"
    return identifier


def line_at(code: types.CodeType, offset: int) -> int | None:
    """Return the source line of the instruction at byte `offset` in `code`."""
    starts, ends, lines = _line_table(code)
    position = bisect.bisect_right(starts, offset) - 1
    if position < 0 or offset >= ends[position]:
        return None
    return lines[position]


@lru_cache(maxsize=8192)
def _line_table(code: types.CodeType) -> tuple[list[int], list[int], list[int | None]]:
    starts: list[int] = []
    ends: list[int] = []
    lines: list[int | None] = []
    for start, end, line in code.co_lines():
        starts.append(start)
        ends.append(end)
        lines.append(line)
    return starts, ends, lines
