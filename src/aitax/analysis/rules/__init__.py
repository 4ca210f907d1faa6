"""Diagnosis rules. Each rule is one small class; `diagnose` runs them all and ranks the findings."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aitax.analysis.rules.base import Rule, RuleContext
from aitax.analysis.rules.batching import BatchRule
from aitax.analysis.rules.caching import CacheRule
from aitax.analysis.rules.eager_log_format import EagerLogFormatRule
from aitax.analysis.rules.full_scan import FullScanRule
from aitax.analysis.rules.gc_pauses import GcPauseRule
from aitax.analysis.rules.io_wait import IoWaitRule
from aitax.analysis.rules.logging_cost import LoggingRule
from aitax.analysis.rules.memory_copy import MemoryCopyRule
from aitax.analysis.rules.memory_leak import MemoryLeakRule
from aitax.analysis.rules.model_runtime import ModelRuntimeRule
from aitax.analysis.rules.n_plus_one import QueryPerItemRule
from aitax.analysis.rules.serialization import SerializationRule
from aitax.analysis.rules.startup import StartupRule
from aitax.analysis.rules.thread_oversubscription import ThreadOversubscriptionRule
from aitax.analysis.rules.vectorize import VectorizeRule
from aitax.model.run import Finding

logger = logging.getLogger(__name__)

DEFAULT_RULES: tuple[Rule, ...] = (
    VectorizeRule(),
    BatchRule(),
    CacheRule(),
    LoggingRule(),
    MemoryCopyRule(),
    MemoryLeakRule(),
    IoWaitRule(),
    QueryPerItemRule(),
    FullScanRule(),
    SerializationRule(),
    ModelRuntimeRule(),
    ThreadOversubscriptionRule(),
    StartupRule(),
    GcPauseRule(),
    EagerLogFormatRule(),
)


def diagnose(context: RuleContext, rules: Sequence[Rule] = DEFAULT_RULES) -> list[Finding]:
    """Run every rule and return the findings, largest estimated saving first."""
    findings: list[Finding] = []
    for rule in rules:
        found = rule.evaluate(context)
        logger.debug("rule %s found %d problems", rule.name, len(found))
        findings.extend(found)
    return sorted(findings, key=lambda finding: -finding.estimated_saving_ms)
