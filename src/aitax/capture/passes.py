"""The hooks that a pass adds around the target's execution.

Every pass also runs the capture watchers, whose records the diagnosis rules
read from the capture's `extra[WATCHERS_KEY]`. The clean pass is the timing
pass, so it gets only the watchers that cost nothing measurable: the start time
and the garbage-collection callbacks. The profiling passes add the watchers that
run Python code on every SQLite statement or log call, and the thread-pool scan.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aitax import markers
from aitax.capture.gc_watch import GcWatch
from aitax.capture.log_watch import LogWatch
from aitax.capture.sql import SqlWatch

logger = logging.getLogger(__name__)

WATCHERS_KEY = "watchers"
# Modules that load BLAS or OpenMP thread pools. The pools are scanned only when one is loaded.
_THREAD_POOL_MODULES = ("numpy", "scipy", "sklearn", "torch", "lightgbm", "xgboost")
# Serializers whose C-level `dumps` and `loads` show in CPU samples as bare builtins.
_C_SERIALIZERS = ("orjson", "ujson", "msgspec", "msgpack", "cloudpickle", "dill", "simdjson")


class PassHooks(Protocol):
    """The hooks a pass adds around the target: a profiler to start and stop, and a compiler."""

    def start(self, recorder: markers.Recorder) -> None: ...

    def stop(self, out_dir: Path) -> dict[str, Any]: ...

    def compile_script(self, source: bytes, path: str) -> types.CodeType: ...


class Watchers:
    """The capture watchers of one pass. `profiling` adds those that cost time per call."""

    def __init__(self, profiling: bool) -> None:
        self.profiling = profiling
        self.started_ns = time.perf_counter_ns()
        self.gc = GcWatch()
        self.sql = SqlWatch() if profiling else None
        self.logs = LogWatch() if profiling else None

    def start(self) -> None:
        self.gc.install()
        if self.sql is not None:
            self.sql.install()
        if self.logs is not None:
            self.logs.install()

    def stop(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "started_ns": self.started_ns,
            "usable_cpus": _usable_cpus(),
            "gc": self.gc.stop(),
            "loaded_serializers": [name for name in _C_SERIALIZERS if name in sys.modules],
        }
        if self.sql is not None:
            record["sql"] = self.sql.stop()
        if self.logs is not None:
            record["logs"] = self.logs.stop()
        if self.profiling:
            record["thread_pools"] = _thread_pools()
        return record


class BasePass:
    """The clean pass: markers only, and the target compiled as python compiles it.

    Subclasses override `start` and `stop` for their profiler. `__init_subclass__`
    wraps those overrides so that the watchers start before the profiler and stop
    after it, in every pass, whether or not the override calls `super()`.
    """

    profiling = False
    _watchers: Watchers | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.profiling = True
        if "start" in cls.__dict__:
            cls.start = _with_watchers_started(cls.__dict__["start"])  # type: ignore[method-assign, assignment]
        if "stop" in cls.__dict__:
            cls.stop = _with_watchers_stopped(cls.__dict__["stop"])  # type: ignore[method-assign, assignment]

    def start(self, recorder: markers.Recorder) -> None:
        self._start_watchers()

    def stop(self, out_dir: Path) -> dict[str, Any]:
        return self._stop_watchers({})

    def compile_script(self, source: bytes, path: str) -> types.CodeType:
        return compile(source, path, "exec", dont_inherit=True)

    def _start_watchers(self) -> None:
        if self._watchers is None:
            self._watchers = Watchers(self.profiling)
            self._watchers.start()

    def _stop_watchers(self, extra: dict[str, Any]) -> dict[str, Any]:
        watchers = self._watchers
        if watchers is not None and WATCHERS_KEY not in extra:
            self._watchers = None
            extra[WATCHERS_KEY] = watchers.stop()
        return extra


def _with_watchers_started(
    start: Callable[[BasePass, markers.Recorder], None],
) -> Callable[[BasePass, markers.Recorder], None]:
    @functools.wraps(start)
    def wrapper(self: BasePass, recorder: markers.Recorder) -> None:
        self._start_watchers()
        start(self, recorder)

    return wrapper


def _with_watchers_stopped(
    stop: Callable[[BasePass, Path], dict[str, Any]],
) -> Callable[[BasePass, Path], dict[str, Any]]:
    @functools.wraps(stop)
    def wrapper(self: BasePass, out_dir: Path) -> dict[str, Any]:
        return self._stop_watchers(stop(self, out_dir))

    return wrapper


def watcher_record(extras: Mapping[str, Mapping[str, Any]], passes: tuple[str, ...]) -> Any:
    """Return the watcher record of the first pass in `passes` that has one, or None."""
    for name in passes:
        record = extras.get(name, {}).get(WATCHERS_KEY)
        if record is not None:
            return record
    return None


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _thread_pools() -> list[dict[str, Any]]:
    """List the BLAS and OpenMP pools loaded now, with their sizes, through threadpoolctl."""
    if not any(name in sys.modules for name in _THREAD_POOL_MODULES):
        return []
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        logger.debug("threadpoolctl is not installed; thread pool sizes are not recorded")
        return []
    return [
        {
            "user_api": str(pool.get("user_api")),
            "internal_api": str(pool.get("internal_api")),
            "num_threads": int(pool.get("num_threads") or 0),
            "prefix": str(pool.get("prefix")),
        }
        for pool in threadpoolctl.threadpool_info()
    ]
