"""Worker threads times BLAS or OpenMP pool threads above the number of usable cores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aitax.analysis.classify import IDLE
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.io_wait import BLOCKING_CALLS
from aitax.analysis.samples import Sample
from aitax.capture.passes import watcher_record
from aitax.model.run import Finding

# Thread pools are read by threadpoolctl at the end of the profiling passes.
POOL_PASSES = ("cpu", "line")
# A thread counts as a worker when it has at least this share of the sampled busy time.
# NOTE: numpy's operators and dispatched functions (np.dot in numpy 2) leave no
# frame in the samples, so the rule cannot separate BLAS work from other work in
# a thread. It assumes that busy workers in a process with multi-threaded pools
# use those pools, and the finding states that assumption.
MIN_WORKER_SHARE = 0.05
# The estimated saving must reach this share of the run.
MIN_SAVING_SHARE = 0.02

# Builtins in which a thread waits for another thread, as pyinstrument names them.
_WAITS = frozenset({"lock.acquire", "RLock.acquire", "SimpleQueue.get"})
_THREAD_FILE = "<thread>"
_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


class ThreadOversubscriptionRule:
    name = "thread-oversubscription"
    category = "threads"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        watchers = watcher_record(context.pass_extras, POOL_PASSES)
        if not isinstance(watchers, dict) or context.wall_s <= 0:
            return []
        pools = [p for p in watchers.get("thread_pools", []) if p.get("num_threads", 0) > 1]
        cores = int(watchers.get("usable_cpus") or 0)
        if not pools or cores < 1:
            return []

        busy_s = _busy_seconds_by_thread(context.samples)
        total_s = sum(busy_s.values())
        workers = len([s for s in busy_s.values() if total_s and s / total_s >= MIN_WORKER_SHARE])
        pool_threads = max(int(pool["num_threads"]) for pool in pools)
        threads = workers * pool_threads
        if workers < 2 or threads <= cores:
            return []

        estimate = _measured_wait(context, cores) or _proportional(context, total_s, cores, threads)
        if estimate.saving_s / context.wall_s < MIN_SAVING_SHARE:
            return []
        return [self._finding(context, pools, workers, cores, estimate)]

    def _finding(
        self,
        context: RuleContext,
        pools: list[dict[str, Any]],
        workers: int,
        cores: int,
        estimate: Estimate,
    ) -> Finding:
        pool_threads = max(int(pool["num_threads"]) for pool in pools)
        names = ", ".join(
            sorted({f"{pool['internal_api']} ({pool['num_threads']})" for pool in pools})
        )
        per_worker = max(1, cores // workers)
        threads = workers * pool_threads
        return make_finding(
            self,
            context,
            stage=_busiest_stage(context.samples),
            title="More compute threads than cores",
            evidence=(
                f"{workers} threads did work, and the process has thread pools of "
                f"{pool_threads} threads ({names}): if each worker's numeric calls use a full "
                f"pool, up to {threads} threads compete for {cores} usable cores."
            ),
            estimate=estimate,
            fix=(
                f"Size the pools to the cores each worker gets: {per_worker} thread"
                f"{'s' if per_worker > 1 else ''} per worker for {workers} workers on {cores} "
                "cores (threadpoolctl, or OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set before "
                "numpy is imported), or run fewer workers."
            ),
            code_sketch=(
                "from threadpoolctl import threadpool_limits\n\n"
                f"threadpool_limits(limits={per_worker})  # once, before the workers start\n"
                f"pool = ThreadPoolExecutor(max_workers={workers})"
            ),
        )


def _measured_wait(context: RuleContext, cores: int) -> Estimate | None:
    """Estimate the saving from the clean pass's marked spans in two or more threads.

    A worker's span runs longer than its thread's CPU time while it waits for a
    core. With W workers on C cores, waiting of (W/C - 1) x its CPU time is
    inherent to sharing the cores. The wait beyond that, spread over the W
    workers, is taken as the wall time lost to the oversized pools.
    """
    wall_ns: dict[int, int] = defaultdict(int)
    cpu_ns: dict[int, int] = defaultdict(int)
    for event in context.stage_events:
        wall_ns[event.thread_id] += max(0, event.end_ns - event.start_ns - event.child_ns)
        cpu_ns[event.thread_id] += max(0, event.cpu_ns - event.child_cpu_ns)
    workers = len(wall_ns)
    if workers < 2:
        return None

    wait_s = (sum(wall_ns.values()) - sum(cpu_ns.values())) / 1e9
    inherent_s = sum(cpu_ns.values()) / 1e9 * max(0.0, workers / cores - 1)
    saving = max(0.0, wait_s - inherent_s) / workers
    return Estimate(
        saving,
        f"the clean pass's marked spans in {workers} threads waited {format_ms(wait_s)} beyond "
        f"their CPU time; less the {format_ms(inherent_s)} that {workers} workers on {cores} "
        f"cores wait anyway, spread over the {workers} workers. An estimate: a busy machine "
        "also makes threads wait",
    )


def _proportional(context: RuleContext, busy_s: float, cores: int, threads: int) -> Estimate:
    """Estimate the saving from the workers' sampled busy time, when no spans were marked."""
    seconds = context.scaled(busy_s)
    return Estimate(
        seconds * (1 - cores / threads),
        f"{format_ms(seconds)} of busy worker time x (1 - {cores}/{threads}): the "
        "estimate assumes the workers' time goes to pool-using numeric calls, and that "
        "those slow down in proportion to the threads in excess of the cores",
    )


def _busy_seconds_by_thread(samples: Sequence[Sample]) -> dict[int, float]:
    """Sum the sampled time per thread, leaving out waits and imports."""
    seconds: dict[int, float] = defaultdict(float)
    for sample in samples:
        thread = sample.frames[0]
        if thread.file != _THREAD_FILE or sample.stage == IDLE:
            continue
        if any(frame.file in _IMPORT_FILES for frame in sample.frames):
            continue
        leaf = sample.frames[-1]
        if leaf.builtin and (leaf.function in _WAITS or leaf.function in BLOCKING_CALLS):
            continue
        seconds[thread.line] += sample.seconds
    return seconds


def _busiest_stage(samples: Sequence[Sample]) -> str:
    seconds: dict[str, float] = defaultdict(float)
    for sample in samples:
        if sample.stage != IDLE:
            seconds[sample.stage] += sample.seconds
    return max(seconds, key=seconds.__getitem__) if seconds else "other"
