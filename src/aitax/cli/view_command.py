"""`aitax view`: open a report, or one of its profiles in snakeviz or pyinstrument's viewer."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import webbrowser
from pathlib import Path
from typing import Any

from rich.console import Console

from aitax.errors import ReportLoadError
from aitax.model.io import RUN_FILE, load_run, report_folder
from aitax.profile import MEMORY_FLAMEGRAPH, REPORT_FILE
from aitax.report.exports import PROF_FILE, PYINSTRUMENT_HTML

logger = logging.getLogger(__name__)

HELP = """\
Open the report in DIR in a browser. With --cpu, open the CPU profile in
snakeviz; with --flame, open pyinstrument's own HTML view; with --memory, open
memray's flame graph. When no browser can be opened, print the path or URL.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "view",
        help="open a report or one of its views",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "report_dir", type=Path, metavar="DIR", help="a folder written by aitax run"
    )
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--cpu", action="store_true", help="open the .prof file in snakeviz")
    views.add_argument("--flame", action="store_true", help="open pyinstrument's HTML view")
    views.add_argument("--memory", action="store_true", help="open memray's flame graph")
    parser.add_argument("--no-browser", action="store_true", help="print the path or URL only")
    parser.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0
    )
    parser.add_argument("-v", "--verbose", dest="verbosity", action="count")
    parser.set_defaults(handler=view)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ReportLoadError(f"{what} {path} not found; rerun aitax run to write it")
    return path


def view(args: argparse.Namespace, console: Console) -> int:
    folder = report_folder(args.report_dir)
    load_run(folder / RUN_FILE)

    if args.cpu:
        return _open_snakeviz(_require(folder / PROF_FILE, "CPU profile"), args.no_browser, console)
    page = folder / REPORT_FILE
    if args.flame:
        page = folder / PYINSTRUMENT_HTML
    elif args.memory:
        page = folder / MEMORY_FLAMEGRAPH
    _open_page(_require(page, "page"), args.no_browser, console)
    return 0


def _open_page(path: Path, no_browser: bool, console: Console) -> None:
    url = path.resolve().as_uri()
    if no_browser or not webbrowser.open(url):
        console.print(url, markup=False, highlight=False)


def _open_snakeviz(prof: Path, no_browser: bool, console: Console) -> int:
    command = [sys.executable, "-m", "snakeviz", "--hostname", "127.0.0.1"]
    if no_browser:
        command.append("--server")
    command.append(str(prof))
    console.print("Starting snakeviz on 127.0.0.1; press Ctrl-C to stop it.", markup=False)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
