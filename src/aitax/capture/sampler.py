"""A sampling thread that reads the Python stack of every thread with `sys._current_frames()`.

A profile hook (`sys.setprofile`, which pyinstrument installs) runs on every
call and return, and makes call-heavy code two to three times slower. This
sampler costs nothing between samples: it wakes every `interval` seconds, takes
the GIL, copies each thread's stack as (code object, last instruction) pairs and
goes back to sleep. Stacks are turned into pyinstrument's frame identifiers only
once, when the pass ends, so that the CPU views built on pyinstrument keep working.

While another thread runs Python code, the sampler waits for the GIL for up to
the interpreter's switch interval (5 ms by default, 0.1 ms in the CPU pass). A C
function that holds the GIL delays the sample until it returns. So samples come
less often than every `interval`, and each is weighted by the wall time since
the previous one, which keeps the totals right.
"""

from __future__ import annotations

import bisect
import gc
import logging
import operator
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import accumulate, repeat, takewhile

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
# The sampler waits longer between samples when a sample costs more than this
# share of the time between samples. Samples cost most where every stack is new,
# such as while modules are imported, and reading them at the full rate there
# made the example's CPU pass about a third slower.
MAX_SAMPLER_SHARE = 0.03
# The maximum wait between samples. One sample that names a C function in a
# large module body can take tens of milliseconds, once, and the wait after it
# must not leave seconds of the run unsampled.
MAX_WAIT_S = 0.05
# Threads whose name starts with this prefix belong to aitax and are not sampled.
OWN_THREAD_PREFIX = "aitax-"

# A stack as sampled: the name of the C function the leaf calls (or None), the
# ids of the frames' code objects from the leaf to the root, and the offsets of
# their last instructions. An elided run of frames has the code id ELIDED_ID and
# the number of frames as its offset.
StackKey = tuple[str | None, tuple[int, ...], tuple[int, ...]]
ELIDED_ID = 0
# The deepest stack that a sample reads; deeper frames near the root are left out.
MAX_WALK = 100_000
_is_frame = partial(operator.is_not, None)
_get_code = operator.attrgetter("f_code")
_get_offset = operator.attrgetter("f_lasti")
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
        self._callees: dict[tuple[int, int], str | None] = {}
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
        wait_s = self.interval
        while not self._stop.wait(wait_s):
            now = time.perf_counter()
            cpu_before = time.thread_time()
            try:
                self._sample(now - last)
            except Exception:
                # A sampler error must not end the pass. Count it, log the first.
                self.errors += 1
                if self.errors == 1:
                    logger.exception("the CPU sampler failed to read a stack; it goes on")
            last = now
            cost_s = time.thread_time() - cpu_before
            wait_s = min(max(self.interval, cost_s / MAX_SAMPLER_SHARE), MAX_WAIT_S)
        self.sampler_cpu_s = time.thread_time()

    def _sample(self, seconds: float) -> None:
        for ident, frame in sys._current_frames().items():
            if ident in self._ignored:
                continue
            if ident not in self.result.thread_names and not self._name_thread(ident):
                continue
            key, stage = self._read_stack_without_gc(frame)
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

    def _read_stack_without_gc(self, leaf: types.FrameType) -> tuple[StackKey, str | None]:
        """Read a stack with the garbage collector off.

        Reading another thread's frames creates frame objects, and an allocation
        can start a collection that runs Python code (finalizers, gc callbacks).
        That code can hand the GIL to the sampled thread in the middle of a C-level
        read of its frames, which then pops them: CPython 3.11 crashed that way on
        deep recursion.
        """
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._read_stack(leaf)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _read_stack(self, leaf: types.FrameType) -> tuple[StackKey, str | None]:
        # Walk the frames in one C-level call, so that no Python code runs between
        # two f_back reads and the sampled thread cannot take the GIL to pop or
        # suspend the frames being walked. Reading f_code and f_lasti of frame
        # objects held here is safe.
        frames = list(
            takewhile(_is_frame, accumulate(repeat("f_back", MAX_WALK), getattr, initial=leaf))
        )
        codes = list(map(_get_code, frames))
        # Code objects hash slowly (their whole bytecode and constants), so stacks
        # are keyed by id(code), and `codes` keeps each one alive.
        code_ids = tuple(map(id, codes))
        offsets = tuple(map(_get_offset, frames))
        self.result.codes.update(zip(code_ids, codes, strict=True))

        stage = None
        if self.frame_stages:
            names = next(filter(None, map(self.frame_stages.get, map(id, frames))), None)
            stage = _last_name(names)

        if len(code_ids) > MAX_LEAF_FRAMES + MAX_ROOT_FRAMES:
            elided = len(code_ids) - MAX_LEAF_FRAMES - MAX_ROOT_FRAMES
            code_ids = (*code_ids[:MAX_LEAF_FRAMES], ELIDED_ID, *code_ids[-MAX_ROOT_FRAMES:])
            offsets = (*offsets[:MAX_LEAF_FRAMES], elided, *offsets[-MAX_ROOT_FRAMES:])
        return (self._callee(leaf, code_ids[0], offsets[0]), code_ids, offsets), stage

    def _callee(self, leaf: types.FrameType, code_id: int, offset: int) -> str | None:
        site = (code_id, offset)
        if site not in self._callees:
            self._callees[site] = called_c_function(leaf)
        return self._callees[site]


def _last_name(names: list[str] | None) -> str | None:
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
    callee, code_ids, offsets = key
    identifiers: list[str] = []
    for code_id, offset in zip(reversed(code_ids), reversed(offsets), strict=True):
        if code_id == ELIDED_ID:
            identifiers.append(f"[{offset} frames elided]\x00{ELIDED_FILE}\x000")
        else:
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
