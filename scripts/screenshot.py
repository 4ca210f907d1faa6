"""Take the README's screenshot of a report with headless Chromium.

Usage: .venv/bin/python scripts/screenshot.py REPORT_DIR [PNG]

The PNG defaults to docs/report.png. Chromium runs with the same flags as the
browser tests, which keep it off the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_helpers import screenshot  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        sys.stderr.write("usage: scripts/screenshot.py REPORT_DIR [PNG]\n")
        return 2
    report = Path(argv[0]) / "report.html"
    if not report.is_file():
        sys.stderr.write(f"screenshot: {report} not found; pass a folder that aitax run wrote\n")
        return 2
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "report.png"
    events = screenshot(report, target, width=1280, height=1000)
    if events.console_errors or events.external_requests:
        sys.stderr.write(f"screenshot: the page reported problems: {events}\n")
        return 1
    sys.stdout.write(f"Wrote {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
