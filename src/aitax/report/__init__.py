"""Reports of a run: a self-contained HTML page and a terminal summary."""

from aitax.report.html import render_html, write_html
from aitax.report.terminal import print_summary

__all__ = ["print_summary", "render_html", "write_html"]
