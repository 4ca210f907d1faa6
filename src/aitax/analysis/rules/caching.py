"""Repeated fetches of the same key, which a cache would serve."""

from __future__ import annotations

from collections import Counter

from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.markers import FEATURE_FETCH
from aitax.model.run import Finding

MIN_FETCHES = 20
MIN_HIT_RATE = 0.2


class CacheRule:
    name = "repeated-fetch"
    category = "cache"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        fetches = [e for e in context.stage_events if e.name == FEATURE_FETCH and e.key is not None]
        if len(fetches) < MIN_FETCHES:
            return []

        counts = Counter(event.key for event in fetches)
        hits = len(fetches) - len(counts)
        hit_rate = hits / len(fetches)
        if hit_rate < MIN_HIT_RATE:
            return []

        fetch_s = sum(max(0, e.end_ns - e.start_ns - e.child_ns) for e in fetches) / 1e9
        saving = fetch_s * hit_rate
        top_count = counts.most_common(1)[0][1]
        return [
            make_finding(
                self,
                context,
                stage=FEATURE_FETCH,
                title="The same features are fetched again and again",
                evidence=(
                    f"{len(fetches):,} fetches read {len(counts):,} distinct keys; the most "
                    f"requested key was read {top_count:,} times. A cache holding every key "
                    f"would answer {hit_rate:.0%} of fetches."
                ),
                estimate=Estimate(
                    saving,
                    f"{format_ms(fetch_s)} of keyed fetches x {hit_rate:.0%} hit rate, "
                    "assuming a cache hit costs nothing next to a fetch",
                ),
                fix=(
                    "Cache fetched features by key, with a time-to-live that matches how fresh "
                    "the features must be (functools.lru_cache, cachetools.TTLCache, or Redis)."
                ),
                code_sketch=(
                    "from cachetools import TTLCache, cached\n\n"
                    "@cached(TTLCache(maxsize=100_000, ttl=300))\n"
                    "def fetch_features(key):\n"
                    "    return store.get(key)"
                ),
            )
        ]
