"""Stage and request markers: the instrumentation API that pipelines import.

A marker costs one global lookup when no recorder is installed, so marked code
can ship to production unchanged. While a recorder is installed, each stage or
request span is timed with the recorder's clocks and appended to its event
lists. The current stage lives in a context variable, so threads and asyncio
tasks each see their own stage, and samplers can read it at sample time.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

FEATURE_FETCH: Final = "feature_fetch"
FEATURE_COMPUTE: Final = "feature_compute"
INFERENCE: Final = "inference"
LOGGING: Final = "logging"
STANDARD_STAGES: Final = (FEATURE_FETCH, FEATURE_COMPUTE, INFERENCE, LOGGING)


@dataclass(slots=True)
class StageEvent:
    """One finished stage span. Times are in nanoseconds of the recorder's clocks."""

    name: str
    start_ns: int
    end_ns: int
    cpu_ns: int
    child_ns: int
    child_cpu_ns: int
    thread_id: int
    request_id: int | None
    key: Hashable | None = None


@dataclass(slots=True)
class RequestEvent:
    """One finished request span: a single prediction, or a batch of `size` items."""

    request_id: int
    size: int
    start_ns: int
    end_ns: int
    thread_id: int


@dataclass(slots=True)
class _OpenSpan:
    name: str
    parent: _OpenSpan | None
    start_ns: int
    start_cpu_ns: int
    key: Hashable | None
    child_ns: int = 0
    child_cpu_ns: int = 0


@dataclass(slots=True)
class _OpenRequest:
    request_id: int
    size: int
    start_ns: int


# Called with ("stage" or "request", name, True on enter and False on exit), in
# the thread that crosses the boundary. The memory pass uses it to mark stage
# boundaries in the allocation stream.
BoundaryListener = Callable[[str, str, bool], None]


@dataclass
class Recorder:
    """Collects stage and request events while a pass runs.

    `clock` returns wall time and `cpu_clock` the calling thread's CPU time, both
    in nanoseconds; tests inject fake clocks to get exact numbers.
    """

    clock: Callable[[], int] = time.perf_counter_ns
    cpu_clock: Callable[[], int] = time.thread_time_ns
    listener: BoundaryListener | None = None
    # When set, maps id(frame) of each frame with an open `with stage(...)` to the
    # names opened there, innermost last. A sampler in another thread cannot read
    # this thread's context variables, but it can find these frames in a stack.
    frame_stages: dict[int, list[str]] | None = None
    # Finished stage spans as tuples in StageEvent's field order: a tuple is about
    # ten times cheaper to build than the dataclass, and markers sit on hot paths.
    stage_rows: list[tuple[Any, ...]] = field(default_factory=list)
    requests: list[RequestEvent] = field(default_factory=list)
    _next_request_id: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stages(self) -> list[StageEvent]:
        """The finished stage spans, in the order they ended."""
        return [StageEvent(*row) for row in self.stage_rows]

    def new_request_id(self) -> int:
        with self._lock:
            self._next_request_id += 1
            return self._next_request_id


_recorder: Recorder | None = None
_current_span: contextvars.ContextVar[_OpenSpan | None] = contextvars.ContextVar(
    "aitax_current_span", default=None
)
_current_request: contextvars.ContextVar[_OpenRequest | None] = contextvars.ContextVar(
    "aitax_current_request", default=None
)


def install(recorder: Recorder | None) -> Recorder | None:
    """Install `recorder` as the process-wide recorder, and return the previous one."""
    global _recorder
    previous = _recorder
    _recorder = recorder
    return previous


def active_recorder() -> Recorder | None:
    return _recorder


def current_stage() -> str | None:
    """Return the innermost stage open in the calling thread or task, or None."""
    span = _current_span.get()
    return None if span is None else span.name


def current_request_id() -> int | None:
    """Return the id of the request open in the calling thread or task, or None."""
    request = _current_request.get()
    return None if request is None else request.request_id


class _Marker:
    """Shared behaviour of stages and requests: context manager and decorator."""

    def __enter__(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    def __call__(self, func: F) -> F:
        if inspect.isgeneratorfunction(func):
            return cast(F, self._wrap_generator(func))
        if inspect.isasyncgenfunction(func):
            return cast(F, self._wrap_async_generator(func))
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _recorder is None:
                # Without a recorder the marker does nothing: skip the with block's cost.
                return func(*args, **kwargs)
            with self:
                return func(*args, **kwargs)

        return cast(F, wrapper)

    def _wrap_generator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Open the marker each time the generator runs, not while its consumer does."""

        @functools.wraps(func)
        def generator_wrapper(*args: Any, **kwargs: Any) -> Any:
            generator = func(*args, **kwargs)
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                with self:
                    try:
                        item = generator.throw(thrown) if thrown else generator.send(sent)
                    except StopIteration as stop:
                        return stop.value
                sent, thrown = None, None
                try:
                    sent = yield item
                except GeneratorExit:
                    generator.close()
                    raise
                except BaseException as error:
                    thrown = error

        return generator_wrapper

    def _wrap_async_generator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Open the marker each time the async generator runs, not while its consumer does."""

        @functools.wraps(func)
        async def async_generator_wrapper(*args: Any, **kwargs: Any) -> Any:
            generator = func(*args, **kwargs)
            sent: Any = None
            while True:
                with self:
                    try:
                        item = await generator.asend(sent)
                    except StopAsyncIteration:
                        return
                sent = yield item

        return async_generator_wrapper


class Stage(_Marker):
    """A named pipeline stage. Instances keep no per-use state, so one may be shared."""

    __slots__ = ("key", "name")

    def __init__(self, name: str, key: Hashable | None = None) -> None:
        self.name = name
        self.key = key

    def __enter__(self) -> None:
        recorder = _recorder
        if recorder is None:
            return
        parent = _current_span.get()
        if recorder.listener is not None:
            recorder.listener("stage", self.name, True)
        span = _OpenSpan(self.name, parent, recorder.clock(), recorder.cpu_clock(), self.key)
        _current_span.set(span)
        frame_stages = recorder.frame_stages
        if frame_stages is not None:
            frame_stages.setdefault(id(sys._getframe(1)), []).append(self.name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        recorder = _recorder
        span = _current_span.get()
        if recorder is None or span is None or span.name != self.name:
            # The recorder was installed or removed inside this span: nothing to close.
            return
        end_ns = recorder.clock()
        cpu_ns = recorder.cpu_clock() - span.start_cpu_ns
        if recorder.frame_stages is not None:
            _forget_frame_stage(recorder.frame_stages, id(sys._getframe(1)))
        if recorder.listener is not None:
            recorder.listener("stage", self.name, False)
        _current_span.set(span.parent)
        if span.parent is not None:
            span.parent.child_ns += end_ns - span.start_ns
            span.parent.child_cpu_ns += cpu_ns
        request = _current_request.get()
        recorder.stage_rows.append(
            (
                span.name,
                span.start_ns,
                end_ns,
                cpu_ns,
                span.child_ns,
                span.child_cpu_ns,
                threading.get_ident(),
                None if request is None else request.request_id,
                span.key,
            )
        )


def _forget_frame_stage(frame_stages: dict[int, list[str]], frame_id: int) -> None:
    names = frame_stages.get(frame_id)
    if names:
        names.pop()
    if not names:
        frame_stages.pop(frame_id, None)


class Request(_Marker):
    """One prediction, or one batch of `size` items."""

    __slots__ = ("size",)

    def __init__(self, size: int = 1) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"request size {size!r} is invalid; pass a positive integer item count"
            )
        self.size = size

    def __enter__(self) -> None:
        recorder = _recorder
        if recorder is None:
            return
        if recorder.listener is not None:
            recorder.listener("request", "", True)
        _current_request.set(_OpenRequest(recorder.new_request_id(), self.size, recorder.clock()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        recorder = _recorder
        request = _current_request.get()
        if recorder is None or request is None:
            return
        _current_request.set(None)
        if recorder.listener is not None:
            recorder.listener("request", "", False)
        recorder.requests.append(
            RequestEvent(
                request_id=request.request_id,
                size=request.size,
                start_ns=request.start_ns,
                end_ns=recorder.clock(),
                thread_id=threading.get_ident(),
            )
        )


_shared_stages: dict[str, Stage] = {}


def stage(name: str, key: Hashable | None = None) -> Stage:
    """Mark a pipeline stage, as a context manager or a decorator.

    The standard stages are `feature_fetch`, `feature_compute`, `inference` and
    `logging`; other names are allowed. `key` names what a fetch reads (a user
    id, say), so that repeated reads of one key can be detected.
    """
    shared = _shared_stages.get(name) if key is None else None
    if shared is not None:
        return shared
    if not isinstance(name, str) or not name:
        raise ValueError(f"stage name {name!r} is invalid; pass a non-empty string")
    if key is not None:
        return Stage(name, key)
    return _shared_stages.setdefault(name, Stage(name))


def request(size: int = 1) -> Request:
    """Mark one prediction, or one batch of `size` items, as a context manager or a decorator."""
    return Request(size)
