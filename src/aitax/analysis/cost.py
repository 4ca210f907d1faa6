"""Cost per 1000 predictions at a given instance price."""

from __future__ import annotations

from aitax.model.run import Cost, RequestStats

# AWS t3.large (2 vCPU, 8 GiB, x86-64) Linux on-demand in us-east-1: $0.0832 per
# hour as quoted in 2026. An estimate for a small inference host; set your own
# price with --instance-cost-per-hour or instance_cost_per_hour in [tool.aitax].
DEFAULT_INSTANCE_COST_PER_HOUR = 0.0832


def cost_per_1000(requests: RequestStats, cost_per_hour: float) -> Cost:
    """Price 1000 predictions as the instance time one serving process needs for them."""
    throughput = requests.throughput_items_per_s
    if not throughput:
        return Cost(
            cost_per_hour,
            None,
            "no requests were marked; wrap each prediction in aitax.request() to get a cost",
        )

    per_1000 = cost_per_hour / 3600 * 1000 / throughput
    return Cost(
        cost_per_hour,
        per_1000,
        f"${cost_per_hour:g} per instance hour / {throughput:,.1f} predictions per second, "
        "with one process serving requests back to back",
    )
