"""Marked stages whose wall time is far above their CPU time: they wait for I/O."""

from __future__ import annotations

from collections import defaultdict

from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.samples import Sample
from aitax.model.run import Finding, StageStats

# A stage must take this share of the serving time, which is the summed request
# latency or the wall time when no requests are marked. It must also spend at
# most this fraction of its wall time on the CPU.
MIN_STAGE_SHARE = 0.05
MAX_CPU_FRACTION = 0.5
# Wall time above CPU time can also come from a busy machine or from waiting for
# the GIL, so the CPU pass must confirm the wait. At least this fraction of the
# stage's samples must sit in a blocking call, out of at least this many samples.
MIN_BLOCKED_FRACTION = 0.5
MIN_STAGE_SAMPLES = 5

# Builtins that block on I/O or a timer, as pyinstrument names them. Locks and
# queues are left out, because a thread that waits for another thread's work
# needs a different fix.
BLOCKING_CALLS = frozenset({
    "sleep", "select", "poll.poll", "epoll.poll", "kqueue.control", "devpoll.poll",
    "socket.recv", "socket.recv_into", "socket.recvfrom", "socket.recvfrom_into",
    "socket.send", "socket.sendall", "socket.connect", "socket.accept", "getaddrinfo",
    "_SSLSocket.read", "_SSLSocket.write", "_SSLSocket.do_handshake",
    "FileIO.read", "FileIO.readinto", "FileIO.readall", "BufferedReader.read",
    "BufferedReader.readinto", "read", "readinto", "waitpid", "waitid", "wait",
})  # fmt: skip


class IoWaitRule:
    name = "stage-waits-on-io"
    category = "io_wait"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        findings = []
        for stage in context.stages:
            finding = self._check(context, stage)
            if finding is not None:
                findings.append(finding)
        return findings

    def _check(self, context: RuleContext, stage: StageStats) -> Finding | None:
        if stage.source != "marked" or stage.cpu_s is None or context.serving_s <= 0:
            return None
        if stage.total_s / context.serving_s < MIN_STAGE_SHARE:
            return None
        if stage.cpu_s > MAX_CPU_FRACTION * stage.total_s:
            return None

        samples = [s for s in context.samples if s.marked_stage == stage.name]
        if len(samples) < MIN_STAGE_SAMPLES:
            return None
        sampled_s = sum(sample.seconds for sample in samples)
        blocked = [sample for sample in samples if _blocking_call(sample) is not None]
        blocked_fraction = sum(sample.seconds for sample in blocked) / sampled_s
        if blocked_fraction < MIN_BLOCKED_FRACTION:
            return None
        return self._finding(context, stage, blocked, blocked_fraction)

    def _finding(
        self,
        context: RuleContext,
        stage: StageStats,
        blocked: list[Sample],
        blocked_fraction: float,
    ) -> Finding:
        cpu_s = stage.cpu_s or 0.0
        wait_s = stage.total_s - cpu_s
        saving = min(wait_s, blocked_fraction * stage.total_s)
        calls = _top_calls(blocked)
        return make_finding(
            self,
            context,
            stage=stage.name,
            title=f"The {stage.name} stage waits instead of computing",
            evidence=(
                f"{stage.name} took {format_ms(stage.total_s)} of wall time but only "
                f"{format_ms(cpu_s)} of CPU time ({cpu_s / stage.total_s:.0%}); "
                f"{blocked_fraction:.0%} of its CPU-pass samples sat in blocking calls "
                f"({', '.join(calls)})."
            ),
            estimate=Estimate(
                saving,
                f"the smaller of the stage's wall time minus its CPU time "
                f"({format_ms(wait_s)}) and its sampled share in blocking calls "
                f"({blocked_fraction:.0%} of {format_ms(stage.total_s)}): what a cache hit or "
                "local data removes. Overlapping the waits saves latency but less of the total",
            ),
            fix=(
                "Faster code will not help: the stage is waiting. Cache the results that "
                "repeat, issue the independent calls concurrently (a thread pool or asyncio), "
                "or move the data closer (a local replica, a batch read ahead of the requests)."
            ),
            code_sketch=(
                "# before: one blocking call per item\n"
                "rows = [client.get(key) for key in keys]\n"
                "# after: the calls overlap\n"
                "with ThreadPoolExecutor(max_workers=8) as pool:\n"
                "    rows = list(pool.map(client.get, keys))"
            ),
            locations=_callers(blocked),
        )


def _blocking_call(sample: Sample) -> str | None:
    leaf = sample.frames[-1]
    if leaf.builtin and leaf.function in BLOCKING_CALLS:
        return leaf.function
    return None


def _top_calls(samples: list[Sample], limit: int = 3) -> list[str]:
    seconds: defaultdict[str, float] = defaultdict(float)
    for sample in samples:
        seconds[_blocking_call(sample) or "?"] += sample.seconds
    return [f"{name}()" for name in sorted(seconds, key=seconds.__getitem__, reverse=True)[:limit]]


def _callers(samples: list[Sample], limit: int = 3) -> list[str]:
    """Return the user-code functions that made the blocking calls, most sampled first."""
    seconds: defaultdict[str, float] = defaultdict(float)
    for sample in samples:
        user = [frame for frame in sample.frames if frame.user_code]
        if user:
            seconds[user[-1].location] += sample.seconds
    return sorted(seconds, key=seconds.__getitem__, reverse=True)[:limit]
