"""Entry point of the `aitax` command: parse arguments, dispatch to a subcommand, map errors to exit statuses."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console

from aitax import __version__
from aitax.cli import (
    check_command,
    compare_command,
    report_command,
    run_command,
    view_command,
)
from aitax.errors import EXIT_USAGE, AitaxError

logger = logging.getLogger("aitax")

EPILOG = """\
exit status:
  aitax run passes the target's own exit status through. Otherwise:
  0 success, 1 aitax check failed (an objective not met or a significant regression)
  or aitax compare --fail-on-regression found a significant regression,
  2 invalid usage, 3 invalid target, 4 report folder exists or is not aitax's,
  5 report folder not writable, 6 unreadable report or run.json, 7 invalid [tool.aitax],
  130 interrupted by SIGINT, 143 stopped by SIGTERM or by --timeout (with a partial report).
"""


class _ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors print one line and exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # A subcommand's prog is "aitax check" and the top-level parser's is "aitax".
        self.exit(EXIT_USAGE, f"aitax: error: {message}; see {self.prog} --help\n")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to the `sys.stderr` of each record's time.

    Tests and embedding programs replace and close `sys.stderr`, so a handler
    bound to the object of one moment would write to a closed file later.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        # StreamHandler.__init__ and setStream assign the stream; this handler keeps none.
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="aitax",
        description="Profile an ML inference pipeline and rank what to fix first.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aitax {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    commands.required = True
    run_command.add_parser(commands)
    view_command.add_parser(commands)
    report_command.add_parser(commands)
    compare_command.add_parser(commands)
    check_command.add_parser(commands)
    return parser


def configure_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("aitax: %(levelname)s: %(message)s"))
    root = logging.getLogger("aitax")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the aitax command line with `argv`; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbosity", 0))
    console = Console(stderr=True, highlight=False)

    try:
        status: int = args.handler(args, console)
    except AitaxError as error:
        console.print(f"aitax: error: {error}", markup=False, highlight=False, soft_wrap=True)
        return error.exit_code
    return status


def console_entry() -> None:
    sys.exit(main())
