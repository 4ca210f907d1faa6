"""Reports of a run: a self-contained HTML page and a terminal summary.

The HTML renderer imports matplotlib, which takes about a second, so the names
below are imported on first use and commands that do not render start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aitax.report.html import render_html, write_html
    from aitax.report.terminal import print_summary

__all__ = ["print_summary", "render_html", "write_html"]

_HOMES = {
    "render_html": "aitax.report.html",
    "write_html": "aitax.report.html",
    "print_summary": "aitax.report.terminal",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
