"""Profile files for other viewers: cProfile `.prof` for snakeviz, and pyinstrument's HTML."""

from __future__ import annotations

import logging
from pathlib import Path

from pyinstrument.renderers import HTMLRenderer, PstatsRenderer
from pyinstrument.session import Session

from aitax.capture.capture_file import write_bytes_atomic, write_text_atomic

logger = logging.getLogger(__name__)

PROF_FILE = "cpu.prof"
PYINSTRUMENT_HTML = "cpu-pyinstrument.html"


def export_cpu_views(session_path: Path, out_dir: Path) -> dict[str, str]:
    """Write the `.prof` and pyinstrument HTML views of a CPU session; return their labels and names."""
    session = Session.load(str(session_path))
    written: dict[str, str] = {}

    prof = PstatsRenderer().render(session)
    payload = prof if isinstance(prof, bytes) else prof.encode("utf-8", "surrogateescape")
    write_bytes_atomic(out_dir / PROF_FILE, payload)
    written["cProfile stats (snakeviz)"] = PROF_FILE

    html = HTMLRenderer().render(session)
    write_text_atomic(out_dir / PYINSTRUMENT_HTML, html)
    written["pyinstrument flame view"] = PYINSTRUMENT_HTML

    logger.debug("wrote CPU views to %s", out_dir)
    return written
