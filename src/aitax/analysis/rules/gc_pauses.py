"""Garbage-collection pauses that make up a real share of the slowest requests."""

from __future__ import annotations

from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.capture.gc_watch import GcRecord, read_gc_record
from aitax.capture.passes import watcher_record
from aitax.model.run import Finding

# The clean pass times collections too. The CPU pass is used when the clean pass is missing.
GC_PASSES = ("clean", "cpu")
MIN_REQUESTS = 20
# Pauses must make up this share of the latency of the requests at or above the
# p99, and the CPU time of generation-2 pauses inside requests this share of all
# request time.
MIN_TAIL_SHARE = 0.25
MIN_SAVING_SHARE = 0.05


class GcPauseRule:
    name = "gc-tail-latency"
    category = "gc"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        record = _gc_record(context)
        p99_ms = context.requests.p99_ms
        if record is None or p99_ms is None or context.requests.count < MIN_REQUESTS:
            return []

        latency_ns = {e.request_id: e.end_ns - e.start_ns for e in context.request_events}
        tail = [request for request, ns in latency_ns.items() if ns / 1e6 >= p99_ms]
        tail_ns = sum(latency_ns[request] for request in tail)
        tail_gc_ns = sum(record.by_request.get(request, (0, 0, 0))[0] for request in tail)
        if not tail_ns or tail_gc_ns / tail_ns < MIN_TAIL_SHARE:
            return []

        request_ns = sum(latency_ns.values())
        gen2_ns = sum(pauses[1] for pauses in record.by_request.values())
        gen2_cpu_ns = sum(pauses[2] for pauses in record.by_request.values())
        if gen2_cpu_ns / request_ns < MIN_SAVING_SHARE:
            return []
        tail_share = tail_gc_ns / tail_ns
        return [self._finding(context, record, tail_share, len(tail), gen2_ns, gen2_cpu_ns)]

    def _finding(
        self,
        context: RuleContext,
        record: GcRecord,
        tail_share: float,
        tail_count: int,
        gen2_ns: int,
        gen2_cpu_ns: int,
    ) -> Finding:
        requests = context.requests
        saving = gen2_cpu_ns / 1e9
        collections = ", ".join(
            f"generation {generation}: {count:,} taking {format_ms(pause / 1e9)}"
            for generation, (count, pause) in enumerate(
                zip(record.counts, record.pause_ns, strict=True)
            )
        )
        return make_finding(
            self,
            context,
            stage="other",
            title="Garbage collection pauses make the slowest requests slow",
            evidence=(
                f"In the {tail_count:,} requests at or above the p99 ({requests.p99_ms:.2f} ms), "
                f"{tail_share:.0%} of the time went to garbage-collection pauses; the longest "
                f"pause took {format_ms(record.max_pause_ns / 1e9)} (generation "
                f"{record.max_pause_generation}). Collections in the run: {collections}."
            ),
            estimate=Estimate(
                saving,
                f"upper bound: the CPU time of the generation-2 pauses inside requests "
                f"({format_ms(saving)}; {format_ms(gen2_ns / 1e9)} of wall time, which also "
                "counts time the machine gave to other processes). Freezing the start-up "
                "objects removes the walks over them, but full collections of the objects "
                "that requests keep still run, as do generation 0 and 1 pauses",
            ),
            fix=(
                "Call gc.freeze() once the model and lookup tables are loaded, so that full "
                "collections no longer walk them; if pauses remain, raise the generation-0 "
                "threshold or allocate fewer container objects per request."
            ),
            code_sketch=(
                "import gc\n\n"
                "model = load_model()\n"
                "gc.collect()\n"
                "gc.freeze()  # start-up objects move to a permanent generation\n"
                "serve(model)"
            ),
        )


def _gc_record(context: RuleContext) -> GcRecord | None:
    watchers = watcher_record(context.pass_extras, GC_PASSES)
    return read_gc_record(watchers.get("gc")) if isinstance(watchers, dict) else None
