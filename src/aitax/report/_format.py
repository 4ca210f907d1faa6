"""Number and text formatting shared by the HTML and terminal reports."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from aitax.model.run import Finding, Severity

MISSING = "—"

# Amounts below about $1e-12 print as zero.
MAX_COST_DECIMALS = 12

SEVERITY_ORDER: dict[Severity, int] = {"high": 0, "medium": 1, "low": 2}

# C0 and C1 control characters other than tab and newline, which are invisible or
# break layout (most are invalid in XML), and the bidirectional marks, embeddings,
# overrides and isolates, which would reorder the text around a name. They are
# shown as escapes.
_CONTROL_CHARACTERS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def visible_text(text: str) -> str:
    """Replace control characters and lone surrogates with visible backslash escapes.

    The result encodes to UTF-8, so profiled programs whose names hold bytes
    decoded with `surrogateescape` can still be rendered.
    """
    without_controls = _CONTROL_CHARACTERS.sub(_escape_character, text)
    return without_controls.encode("utf-8", "backslashreplace").decode("utf-8")


def _escape_character(match: re.Match[str]) -> str:
    code_point = ord(match.group())
    return f"\\x{code_point:02x}" if code_point <= 0xFF else f"\\u{code_point:04x}"


def format_ms(value: float | None) -> str:
    """Format a duration given in milliseconds, switching to seconds from 1000 ms."""
    if value is None:
        return MISSING
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def format_seconds(value: float | None) -> str:
    """Format a duration in seconds: three decimals below 1 s, three significant digits above."""
    if value is None:
        return MISSING
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value:.3f} s"


def format_share(value: float | None) -> str:
    """Format a fraction in [0, 1] as a percentage."""
    if value is None:
        return MISSING
    return f"{value * 100:.1f}%"


def format_rate(value: float | None, unit: str) -> str:
    """Format a throughput such as requests per second, with `unit` appended."""
    if value is None:
        return MISSING
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}"


def format_bytes(value: float | None) -> str:
    """Format a byte count in binary units (KiB, MiB, GiB), keeping the sign of negative counts."""
    if value is None:
        return MISSING
    sign = "-" if value < 0 else ""
    size = abs(float(value))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    return f"{sign}{size:.1f} TiB"


def format_cost(value: float | None) -> str:
    """Format an amount in US dollars with three or more significant digits, without exponents."""
    if value is None:
        return MISSING
    if value >= 1:
        return f"${value:,.2f}"
    if value >= 0.01:
        return f"${value:.4f}"
    if value <= 0 or not math.isfinite(value):
        return f"${value:g}"
    decimals = min(-math.floor(math.log10(value)) + 2, MAX_COST_DECIMALS)
    return f"${value:.{decimals}f}"


def format_count(value: float | None) -> str:
    """Format a count with thousands separators, and an average (a fraction) with one decimal."""
    if value is None:
        return MISSING
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def format_us(value: float | None) -> str:
    """Format a duration given in microseconds, switching to milliseconds from 1000 µs."""
    if value is None:
        return MISSING
    if value >= 1000:
        return format_ms(value / 1000)
    if value >= 100:
        return f"{value:.0f} µs"
    if value >= 10:
        return f"{value:.1f} µs"
    return f"{value:.2f} µs"


def format_saving(finding: Finding) -> str:
    """Describe a finding's saving: per request when requests were marked, else over the run."""
    share = format_share(finding.saving_share)
    if finding.saving_per_request_ms is not None:
        return f"{format_ms(finding.saving_per_request_ms)} per request ({share} of wall time)"
    return f"{format_ms(finding.estimated_saving_ms)} over the run ({share} of wall time)"


def ranked_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Sort findings by severity, high first, then by estimated saving, largest first."""
    return sorted(
        findings,
        key=lambda finding: (SEVERITY_ORDER.get(finding.severity, 3), -finding.estimated_saving_ms),
    )
