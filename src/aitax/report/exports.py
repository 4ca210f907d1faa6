"""Profile files for other viewers, written from the CPU pass's pyinstrument session.

- `cpu.prof`: cProfile statistics, for snakeviz or `pstats`.
- `cpu-pyinstrument.html`: pyinstrument's own call-tree view.
- `cpu.speedscope.json`: speedscope's file format, from pyinstrument's
  SpeedscopeRenderer, for https://www.speedscope.app or the speedscope CLI.
- `cpu.trace.json`: the Chrome trace event format, for Perfetto
  (ui.perfetto.dev) and chrome://tracing.

Each view is written on its own, so a view that fails to render is logged and
the others are still written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pyinstrument.renderers import HTMLRenderer, PstatsRenderer, SpeedscopeRenderer
from pyinstrument.session import Session

from aitax.capture.capture_file import write_bytes_atomic
from aitax.report.chrome_trace import session_trace

logger = logging.getLogger(__name__)

PROF_FILE: Final = "cpu.prof"
PYINSTRUMENT_HTML: Final = "cpu-pyinstrument.html"
SPEEDSCOPE_FILE: Final = "cpu.speedscope.json"
TRACE_FILE: Final = "cpu.trace.json"

ViewRenderer = Callable[[Session], bytes]


def export_cpu_views(session_path: Path, out_dir: Path) -> dict[str, str]:
    """Write every CPU view of the session at `session_path` into `out_dir`.

    Returns the written files as {label: file name}, in the order the report
    lists them. Raises OSError or ValueError when the session cannot be read.
    """
    session = Session.load(str(session_path))
    views: list[tuple[str, str, ViewRenderer]] = [
        ("cProfile stats (snakeviz)", PROF_FILE, _render_prof),
        ("pyinstrument flame view", PYINSTRUMENT_HTML, _render_pyinstrument_html),
        ("CPU timeline (speedscope)", SPEEDSCOPE_FILE, _render_speedscope),
        ("CPU trace (Perfetto)", TRACE_FILE, _render_trace),
    ]

    written: dict[str, str] = {}
    for label, name, render in views:
        if _write_view(session, out_dir / name, render):
            written[label] = name
    logger.debug("Wrote %d CPU views to %s", len(written), out_dir)
    return written


def _write_view(session: Session, path: Path, render: ViewRenderer) -> bool:
    try:
        payload = render(session)
        write_bytes_atomic(path, payload)
    except (OSError, ValueError, KeyError) as error:
        logger.warning("Could not write the CPU view %s: %s", path, error)
        return False
    return True


def _render_prof(session: Session) -> bytes:
    prof = PstatsRenderer().render(session)
    return prof if isinstance(prof, bytes) else prof.encode("utf-8", "surrogateescape")


def _render_pyinstrument_html(session: Session) -> bytes:
    return _utf8(escape_session_data(HTMLRenderer().render(session)))


# pyinstrument 5 writes the session as plain JSON inside a <script> element, so a
# function or file name holding "</script>" would end the element and let the
# rest run as markup.
_SESSION_START = "const sessionData = "
_SESSION_END = ";\n"


def escape_session_data(page: str) -> str:
    """Escape "<" in the session JSON of pyinstrument's page, so no name can end its script.

    JSON allows "\\u003c" wherever "<" may appear, which is only inside strings.
    """
    start = page.find(_SESSION_START)
    if start < 0:
        logger.warning("pyinstrument's page has no session data where expected; it is left as is")
        return page
    start += len(_SESSION_START)
    end = page.find(_SESSION_END, start)
    if end < 0:
        end = len(page)
    return page[:start] + page[start:end].replace("<", "\\u003c") + page[end:]


def _render_speedscope(session: Session) -> bytes:
    return _utf8(SpeedscopeRenderer().render(session))


def _render_trace(session: Session) -> bytes:
    # ensure_ascii keeps file names that hold undecodable bytes (lone surrogates) writable.
    return json.dumps(session_trace(session), separators=(",", ":")).encode("ascii")


def _utf8(text: str) -> bytes:
    """Encode renderer output, keeping undecodable bytes from file names as they were."""
    return text.encode("utf-8", "surrogateescape")
