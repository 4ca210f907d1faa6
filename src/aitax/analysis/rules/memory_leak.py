"""Memory that each request leaves behind, found by the memory pass."""

from __future__ import annotations

from aitax.analysis.rules.base import Estimate, RuleContext, make_finding
from aitax.model.run import Finding, LeakSuspect


def _mib(size: float) -> str:
    return f"{size / 2**20:,.2f} MiB"


class MemoryLeakRule:
    name = "memory-growth"
    category = "memory"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        memory = context.memory
        if memory is None or not memory.leak_suspects or not context.requests.count:
            return []
        return [self._finding(context, suspect) for suspect in memory.leak_suspects[:3]]

    def _finding(self, context: RuleContext, suspect: LeakSuspect) -> Finding:
        requests = context.requests.count
        # A leak costs memory, not time: the saving is left at zero, so the
        # finding ranks below every time saving and its severity stays low.
        return make_finding(
            self,
            context,
            stage="other",
            title=f"Memory kept after every request at {suspect.function}",
            evidence=(
                f"{suspect.function} ({suspect.file}:{suspect.line}) still held "
                f"{_mib(suspect.held_bytes)} at the end, allocated in at least half of the "
                f"{requests:,} requests: about {suspect.growth_per_request_bytes / 1024:,.1f} KiB "
                "more per request, so a long-running service grows until it runs out of memory."
            ),
            estimate=Estimate(0.0, "a leak costs memory rather than time, so no time saving"),
            fix=(
                "Find what keeps a reference to per-request data (a module-level list or dict, "
                "a cache without a size limit, a closure) and bound it or drop it after use."
            ),
            code_sketch=(
                "# before\n"
                "history.append(features)\n"
                "# after\n"
                "history = collections.deque(maxlen=1000)"
            ),
            locations=[f"{suspect.file}:{suspect.line}"],
        )
