"""Memory analysis: replay the memray capture and attribute allocations to stages and lines.

Allocations are replayed in the order memray recorded them. Stage and request
boundary records (allocations from the memory pass's boundary function) are
paired in order with the boundary log, so each allocation belongs to the stage
that was innermost on its thread when it happened.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import memray
from memray import AllocatorType

from aitax.analysis.frames import AITAX_DIR
from aitax.capture.memory import BOUNDARY_FUNCTION
from aitax.model.run import AllocationSite, LeakSuspect, MemoryProfile, StageMemory

logger = logging.getLogger(__name__)

UNMARKED = "unmarked"
TOP_SITES = 20
# A leak suspect grows by at least this much per request, over at least this many
# requests, with a correlation of at least LEAK_MIN_CORRELATION between request
# count and memory held.
LEAK_MIN_GROWTH_BYTES = 1024
LEAK_MIN_REQUESTS = 10
LEAK_MIN_CORRELATION = 0.9
STACK_DEPTH = 64

_FREES = frozenset({AllocatorType.FREE, AllocatorType.PYMALLOC_FREE, AllocatorType.MUNMAP})
_COPY_CALLS = frozenset(
    {"copy", "astype", "concat", "merge", "join", "reset_index", "to_numpy", "deepcopy", "values"}
)

StackFrame = tuple[str, str, int]
SiteKey = tuple[str, int, str | None]
UserCodePredicate = Callable[[str], bool]


@dataclass
class _Site:
    function: str
    file: str
    line: int
    library_call: str | None
    allocated: int = 0
    count: int = 0
    stage_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: set[int] = field(default_factory=set)


@dataclass
class _StageTotals:
    allocated: int = 0
    count: int = 0
    peak: int = 0


@dataclass
class _Replay:
    """State of the replay: live blocks, current stage per thread, and running totals."""

    live: dict[int, tuple[int, _Site | None, int | None]] = field(default_factory=dict)
    boundaries_expected: int = 0
    boundaries_matched: int = 0
    heap: int = 0
    peak: int = 0
    stage_stack: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    request: dict[int, int | None] = field(default_factory=dict)
    request_count: int = 0
    request_allocated: list[int] = field(default_factory=list)
    request_allocations: list[int] = field(default_factory=list)
    heap_at_request_end: list[int] = field(default_factory=list)
    stages: dict[str, _StageTotals] = field(default_factory=lambda: defaultdict(_StageTotals))
    sites: dict[SiteKey, _Site] = field(default_factory=dict)


class MemoryCaptureError(Exception):
    """The memray capture or its boundary log cannot be read."""


def analyse_memory(
    capture_path: Path,
    boundaries_path: Path,
    rss_peak_bytes: int | None,
    native_traces: bool,
    user_code: UserCodePredicate | None = None,
) -> MemoryProfile:
    """Read the memray capture and compute memory by stage, by line and per request."""
    is_user: UserCodePredicate = user_code or default_user_code
    try:
        boundaries = json.loads(boundaries_path.read_text(encoding="utf-8"))
        reader = memray.FileReader(str(capture_path), report_progress=False)
    except (OSError, ValueError) as error:
        raise MemoryCaptureError(f"{capture_path.name} is unreadable: {error}") from error

    with reader:
        replay = _replay(reader.get_allocation_records(), boundaries, is_user)
        peak_sites = _peak_locations(reader, is_user)
        metadata = reader.metadata

    return _profile(replay, metadata.peak_memory, peak_sites, rss_peak_bytes, native_traces)


_PREFIXES = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)})


@functools.lru_cache(maxsize=65536)
def default_user_code(file: str) -> bool:
    """Return True for code outside the standard library, installed packages and aitax."""
    if file.startswith("<"):
        return file in ("<string>", "<stdin>")
    if file.startswith(AITAX_DIR + os.sep):
        return False
    if "site-packages" in file or "dist-packages" in file:
        return False
    return not any(file.startswith(prefix + os.sep) for prefix in _PREFIXES)


def _replay(
    records: Iterable[memray.AllocationRecord],
    boundaries: Sequence[Sequence[object]],
    is_user: UserCodePredicate,
) -> _Replay:
    state = _Replay()
    stack_cache: dict[int, tuple[StackFrame, ...]] = {}
    site_cache: dict[int, _Site | None] = {}
    boundary_index = 0

    for record in records:
        allocator = record.allocator
        if allocator in _FREES:
            _free(state, record)
            continue

        stack_id = record.stack_id
        stack = stack_cache.get(stack_id)
        if stack is None:
            stack = stack_cache[stack_id] = _stack(record)
        if stack and stack[0][0] == BOUNDARY_FUNCTION:
            if boundary_index < len(boundaries):
                _cross(state, record.tid, boundaries[boundary_index])
                boundary_index += 1
            continue

        _allocate(state, record, stack, site_cache, is_user)

    state.boundaries_expected = len(boundaries)
    state.boundaries_matched = boundary_index
    if boundary_index != len(boundaries):
        logger.info(
            "matched %d of %d stage boundaries in the memory capture",
            boundary_index,
            len(boundaries),
        )
    return state


def _stack(record: memray.AllocationRecord) -> tuple[StackFrame, ...]:
    try:
        return tuple(record.stack_trace(max_stacks=STACK_DEPTH))
    except NotImplementedError:
        return ()


def _cross(state: _Replay, tid: int, boundary: Sequence[object]) -> None:
    kind, name, entering = str(boundary[0]), str(boundary[1]), bool(boundary[2])
    stack = state.stage_stack[tid]
    if kind == "stage":
        if entering:
            stack.append(name)
        elif stack:
            stack.pop()
        return

    if entering:
        state.request_count += 1
        state.request[tid] = state.request_count
        state.request_allocated.append(0)
        state.request_allocations.append(0)
    else:
        state.request[tid] = None
        state.heap_at_request_end.append(state.heap)


def _free(state: _Replay, record: memray.AllocationRecord) -> None:
    block = state.live.pop(record.address, None)
    if block is not None:
        state.heap -= block[0]


def _allocate(
    state: _Replay,
    record: memray.AllocationRecord,
    stack: tuple[StackFrame, ...],
    site_cache: dict[int, _Site | None],
    is_user: UserCodePredicate,
) -> None:
    size = record.size
    tid = record.tid
    stage_stack = state.stage_stack[tid]
    stage = stage_stack[-1] if stage_stack else UNMARKED
    request = state.request.get(tid)
    site = _site_for(record.stack_id, stack, site_cache, state.sites, is_user)

    state.live[record.address] = (size, site, request)
    state.heap += size
    state.peak = max(state.peak, state.heap)

    totals = state.stages[stage]
    totals.allocated += size
    totals.count += record.n_allocations
    totals.peak = max(totals.peak, state.heap)

    if request is not None:
        state.request_allocated[request - 1] += size
        state.request_allocations[request - 1] += record.n_allocations

    if site is not None:
        site.allocated += size
        site.count += record.n_allocations
        site.stage_bytes[stage] += size
        if request is not None:
            site.requests.add(request)


def _site_for(
    stack_id: int,
    stack: tuple[StackFrame, ...],
    cache: dict[int, _Site | None],
    sites: dict[SiteKey, _Site],
    is_user: UserCodePredicate,
) -> _Site | None:
    """Find the line that caused an allocation: the innermost user frame of its stack.

    Stacks that end at the same line through the same library call share one site.
    """
    if stack_id in cache:
        return cache[stack_id]

    frame_index = next((i for i, frame in enumerate(stack) if is_user(frame[1])), None)
    if frame_index is None and not stack:
        cache[stack_id] = None
        return None
    index = frame_index if frame_index is not None else 0
    function, file, line = stack[index]
    library_call = _library_call(stack[:index]) if frame_index is not None else None

    key = (file, line, library_call)
    site = sites.get(key)
    if site is None:
        site = sites[key] = _Site(function, file, line, library_call)
    cache[stack_id] = site
    return site


def _library_call(inner_frames: tuple[StackFrame, ...]) -> str | None:
    """Name the copying pandas or NumPy call between the user line and the allocation, if any."""
    for function, file, _line in reversed(inner_frames):
        name = function.rsplit(".", 1)[-1]
        if name in _COPY_CALLS and ("pandas" in file or "numpy" in file):
            return name
    return None


def _peak_locations(reader: memray.FileReader, is_user: UserCodePredicate) -> list[AllocationSite]:
    """Group the allocations alive at the peak by their innermost user line, largest first."""
    sites: dict[StackFrame, int] = defaultdict(int)
    counts: dict[StackFrame, int] = defaultdict(int)
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        stack = _stack(record)
        frame = next((f for f in stack if is_user(f[1])), stack[0] if stack else None)
        if frame is None:
            continue
        sites[frame] += record.size
        counts[frame] += record.n_allocations
    ordered = sorted(sites.items(), key=lambda item: -item[1])[:10]
    return [
        AllocationSite(function, file, line, "", size, counts[(function, file, line)])
        for (function, file, line), size in ordered
    ]


def _profile(
    state: _Replay,
    memray_peak: int,
    peak_sites: list[AllocationSite],
    rss_peak_bytes: int | None,
    native_traces: bool,
) -> MemoryProfile:
    by_stage = [
        StageMemory(name, totals.allocated, totals.count, totals.peak)
        for name, totals in sorted(state.stages.items(), key=lambda item: -item[1].allocated)
    ]
    requests = state.request_count
    profile = MemoryProfile(
        peak_bytes=memray_peak,
        rss_peak_bytes=rss_peak_bytes,
        native_traces=native_traces,
        total_allocated_bytes=sum(t.allocated for t in state.stages.values()),
        total_allocations=sum(t.count for t in state.stages.values()),
        peak_locations=peak_sites,
        by_stage=by_stage,
        top_allocations=_top_sites(state, requests),
        allocations_per_request=sum(state.request_allocations) / requests if requests else None,
        bytes_per_request=sum(state.request_allocated) / requests if requests else None,
    )
    growth, correlation = _growth(state.heap_at_request_end)
    profile.heap_growth_per_request_bytes = growth
    profile.leak_suspects = _leak_suspects(state, growth, correlation)
    profile.notes.extend(_rss_notes(memray_peak, rss_peak_bytes))
    if state.boundaries_matched < state.boundaries_expected:
        profile.notes.append(
            f"memray recorded {state.boundaries_matched} of the {state.boundaries_expected} stage "
            "and request boundaries, so memory by stage and per request is incomplete. memray "
            "follows Python calls through the profile hook, and a target that installs its own "
            "(sys.setprofile, cProfile) stops it from seeing later calls."
        )
    return profile


def _top_sites(state: _Replay, requests: int) -> list[AllocationSite]:
    ordered = sorted(state.sites.values(), key=lambda site: -site.allocated)[:TOP_SITES]
    return [
        AllocationSite(
            function=site.function,
            file=site.file,
            line=site.line,
            stage=max(site.stage_bytes, key=site.stage_bytes.__getitem__)
            if site.stage_bytes
            else UNMARKED,
            allocated_bytes=site.allocated,
            allocations=site.count,
            library_call=site.library_call,
            per_request_bytes=site.allocated / len(site.requests) if site.requests else None,
        )
        for site in ordered
    ]


def _growth(heap_at_request_end: list[int]) -> tuple[float | None, float]:
    """Least-squares slope of the heap against the request number, and its correlation."""
    n = len(heap_at_request_end)
    if n < 2:
        return None, 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(heap_at_request_end) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    syy = sum((y - mean_y) ** 2 for y in heap_at_request_end)
    sxy = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(heap_at_request_end))
    slope = sxy / sxx
    correlation = sxy / (sxx * syy) ** 0.5 if syy > 0 else 0.0
    return slope, correlation


def _leak_suspects(state: _Replay, growth: float | None, correlation: float) -> list[LeakSuspect]:
    """Sites that still hold blocks allocated in many different requests, when the heap grew steadily.

    A block kept from the last request is normal; blocks kept from at least half
    of all requests are memory that each request leaves behind.
    """
    requests = len(state.heap_at_request_end)
    if (
        growth is None
        or growth < LEAK_MIN_GROWTH_BYTES
        or correlation < LEAK_MIN_CORRELATION
        or requests < LEAK_MIN_REQUESTS
    ):
        return []

    held: dict[int, int] = defaultdict(int)
    kept_from: dict[int, set[int]] = defaultdict(set)
    sites: dict[int, _Site] = {}
    for size, site, request in state.live.values():
        if site is None or request is None:
            continue
        held[id(site)] += size
        kept_from[id(site)].add(request)
        sites[id(site)] = site

    suspects = [
        LeakSuspect(sites[key].function, sites[key].file, sites[key].line, size, size / requests)
        for key, size in held.items()
        if len(kept_from[key]) >= max(LEAK_MIN_REQUESTS, requests // 2)
    ]
    return sorted(suspects, key=lambda suspect: -suspect.held_bytes)[:5]


# Peak RSS and memray's peak are compared in the report when they differ by more than this.
RSS_TOLERANCE = 0.15


def _rss_notes(memray_peak: int, rss_peak: int | None) -> list[str]:
    """Explain a gap of more than 15 % between peak RSS and the peak of tracked allocations."""
    if not rss_peak or memray_peak <= 0:
        return []
    difference = abs(rss_peak - memray_peak) / rss_peak
    if difference <= RSS_TOLERANCE:
        return []
    figures = (
        f"Peak RSS ({rss_peak / 2**20:,.1f} MiB) and the peak of allocations that memray "
        f"tracked ({memray_peak / 2**20:,.1f} MiB) differ by {difference:.0%}."
    )
    if rss_peak > memray_peak:
        reason = (
            " RSS also counts the interpreter, the code of loaded libraries and freed pages "
            "that the allocator has not returned to the operating system."
        )
    else:
        reason = (
            " memray counts the bytes that were requested, but RSS counts only pages that were "
            "written: memory from calloc or mmap (numpy.zeros, for one) is not resident until used."
        )
    return [figures + reason]
