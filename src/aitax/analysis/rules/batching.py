"""Many model calls of one item each, where one call over a batch pays the fixed cost once."""

from __future__ import annotations

from aitax.analysis.classify import is_model_inference_call
from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.markers import INFERENCE, StageEvent
from aitax.model.run import Finding

# The batch size that the estimate assumes a service can gather from its queue.
ASSUMED_BATCH_SIZE = 32
MIN_CALLS = 20
MIN_SINGLE_ROW_FRACTION = 0.8


class BatchRule:
    name = "single-row-inference"
    category = "batch"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        calls = [event for event in context.stage_events if event.name == INFERENCE]
        if len(calls) < MIN_CALLS or not _calls_a_model(context):
            return []

        # aitax does not see the model's input, so a call's item count comes from its
        # request marker. Calls outside a marked request have an unknown count, and
        # only calls inside one-item requests count as one-item calls.
        sizes = _request_sizes(context)
        call_sizes = [sizes.get(event.request_id, 0) for event in calls]
        single = sum(1 for size in call_sizes if size == 1)
        if single / len(calls) < MIN_SINGLE_ROW_FRACTION:
            return []

        sized = [(event, size) for event, size in zip(calls, call_sizes, strict=True) if size > 0]
        fixed_s, basis = _fixed_cost([event for event, _ in sized], [size for _, size in sized])
        # Overlapping calls (asyncio, threads) can add up to more than the stage took.
        stage_s = context.stage_total_s(INFERENCE)
        saving = min(single * fixed_s * (1 - 1 / ASSUMED_BATCH_SIZE), stage_s)
        return [
            make_finding(
                self,
                context,
                stage=INFERENCE,
                title="Model called once per one-item request",
                evidence=(
                    f"{single:,} of {len(calls):,} inference calls ran in requests marked as "
                    f"one item (aitax.request(size=1), the default); {basis}. The item count "
                    "comes from these markers, because aitax does not see the model's input. "
                    "If each call already gets a batch, mark its size with "
                    "aitax.request(size=len(batch))."
                ),
                estimate=Estimate(
                    saving,
                    f"{single:,} one-item calls x {format_ms(fixed_s)} fixed cost, "
                    f"paid once per {ASSUMED_BATCH_SIZE} items instead of once per item",
                ),
                fix=(
                    "Gather requests into batches (a micro-batching queue, or one call over all "
                    "rows of a job) and call predict once per batch."
                ),
                code_sketch=(
                    "# before\n"
                    "for x in rows:\n"
                    "    p = model.predict_proba(x.reshape(1, -1))\n"
                    "# after\n"
                    "probabilities = model.predict_proba(np.vstack(rows))"
                ),
            )
        ]


def _calls_a_model(context: RuleContext) -> bool:
    """Return True when CPU samples of the inference stage show a model library's predict call."""
    # NOTE: an inference stage that lasts only a few sampling intervals in all may
    # get no samples, and then the rule stays silent even when a model runs there.
    return any(
        sample.stage == INFERENCE and any(is_model_inference_call(frame) for frame in sample.frames)
        for sample in context.samples
    )


def _request_sizes(context: RuleContext) -> dict[int | None, int]:
    return {event.request_id: event.size for event in context.request_events}


def _fixed_cost(calls: list[StageEvent], sizes: list[int]) -> tuple[float, str]:
    """Estimate the per-call fixed cost in seconds, by least squares when batch sizes vary."""
    durations = sorted((event.end_ns - event.start_ns) / 1e9 for event in calls)
    median = durations[len(durations) // 2]
    if len(set(sizes)) < 2:
        return median, (
            f"the median call took {format_ms(median)}, which the estimate counts as fixed cost"
        )

    mean_size = sum(sizes) / len(sizes)
    raw = [(event.end_ns - event.start_ns) / 1e9 for event in calls]
    mean_time = sum(raw) / len(raw)
    covariance = sum((s - mean_size) * (t - mean_time) for s, t in zip(sizes, raw, strict=True))
    variance = sum((s - mean_size) ** 2 for s in sizes)
    per_row = covariance / variance
    fixed = max(0.0, mean_time - per_row * mean_size)
    return fixed, (
        f"a fit of call time against rows gives {format_ms(fixed)} per call "
        f"and {format_ms(per_row)} per row"
    )
