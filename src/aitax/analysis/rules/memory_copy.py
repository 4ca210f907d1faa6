"""Copies made on every request (`DataFrame.copy`, `astype`, `concat`), found by the memory pass."""

from __future__ import annotations

from aitax.analysis.rules.base import Estimate, RuleContext, make_finding
from aitax.model.run import AllocationSite, Finding

# A copy must allocate at least this much per request, in at least half of the
# requests, before the rule reports it.
MIN_BYTES_PER_REQUEST = 64 * 1024
MIN_REQUEST_FRACTION = 0.5
# Allocating and filling memory runs at roughly this many bytes per second on a
# current server core. It only turns bytes into an estimated time, and is itself an estimate.
COPY_BYTES_PER_SECOND = 2e9


def _mib(size: float) -> str:
    return f"{size / 2**20:,.2f} MiB"


class MemoryCopyRule:
    name = "per-request-copy"
    category = "memory"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        memory = context.memory
        requests = context.requests.count
        if memory is None or not requests:
            return []
        findings = []
        for site in memory.top_allocations:
            if self._fires(site, requests):
                findings.append(self._finding(context, site, requests))
        return findings

    def _fires(self, site: AllocationSite, requests: int) -> bool:
        if site.library_call is None or site.per_request_bytes is None:
            return False
        seen_in = site.allocated_bytes / site.per_request_bytes if site.per_request_bytes else 0
        return (
            site.per_request_bytes >= MIN_BYTES_PER_REQUEST
            and seen_in >= MIN_REQUEST_FRACTION * requests
        )

    def _finding(self, context: RuleContext, site: AllocationSite, requests: int) -> Finding:
        per_request = site.per_request_bytes or 0.0
        saving = site.allocated_bytes / COPY_BYTES_PER_SECOND
        return make_finding(
            self,
            context,
            stage=site.stage,
            title=f"{site.library_call}() copies data on every request",
            evidence=(
                f"{site.function} ({site.file}:{site.line}) calls {site.library_call}(), which "
                f"allocated {_mib(per_request)} per request and {_mib(site.allocated_bytes)} in all."
            ),
            estimate=Estimate(
                saving,
                f"{_mib(site.allocated_bytes)} copied at an assumed "
                f"{COPY_BYTES_PER_SECOND / 1e9:.0f} GB/s",
            ),
            fix=(
                "Do the copy or type conversion once, outside the per-request path, or work on "
                "the columns you need in place (select columns before converting)."
            ),
            code_sketch=(
                "# before, per request\n"
                "frame = base.copy().astype('float64')\n"
                "# after, once at start-up\n"
                "base = base.astype('float64')"
            ),
            locations=[f"{site.file}:{site.line}"],
        )
