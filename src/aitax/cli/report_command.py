"""`aitax report`: render report.html again from a run folder's run.json, without rerunning anything."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from aitax.errors import OutputError, OutputExistsError
from aitax.model.io import RUN_FILE, load_run, report_folder
from aitax.profile import REPORT_FILE

HELP = """\
Render report.html from the run.json in DIR, for example after upgrading aitax.
The existing report.html is replaced only with --force; -o writes elsewhere.
"""


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="render report.html again from run.json",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "report_dir", type=Path, metavar="DIR", help="a folder written by aitax run"
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="HTML file to write")
    parser.add_argument("--force", action="store_true", help="replace the HTML file if it exists")
    parser.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0
    )
    parser.add_argument("-v", "--verbose", dest="verbosity", action="count")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace, console: Console) -> int:
    folder = report_folder(args.report_dir)
    run = load_run(folder / RUN_FILE)

    target: Path = args.output or folder / REPORT_FILE
    if target.is_dir():
        raise OutputError(f"{target} is a folder; pass -o with the path of an HTML file to write")
    if target.exists() and not args.force:
        raise OutputExistsError(f"{target} already exists; pass --force to replace it, or -o FILE")
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot write {target}: the folder {target.parent} does not exist; create it first"
        )
    from aitax.report.html import write_html

    try:
        write_html(run, target)
    except OSError as error:
        raise OutputError(
            f"cannot write {target} ({error.strerror or error}); pass -o with a writable path"
        ) from None
    if args.verbosity >= 0:
        console.print(f"Wrote {target}", markup=False, highlight=False)
    return 0
