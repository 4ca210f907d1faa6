"""Log calls by call site: how many were emitted, and how many were below the level.

The watch wraps `logging.Logger.isEnabledFor`, which every level method calls
before it builds a record. The wrapper returns before any record exists, so
`findCaller` and the emitted records are unchanged. For a suppressed call it
reads the message and arguments that the caller passed: a message that is
already a formatted string (no arguments, not a constant of the calling code)
was formatted eagerly, for nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Call sites kept; calls from further sites are only counted in `untracked`.
MAX_SITES = 1000

_LOGGING_FILE = os.path.normcase(logging.__file__)
_AITAX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass
class LogSite:
    """One line of user code that calls the logging API.

    `eager` counts suppressed calls whose message was an already formatted
    string, and `eager_chars` the characters of those messages.
    """

    file: str
    function: str
    first_line: int
    line: int
    emitted: int = 0
    suppressed: int = 0
    eager: int = 0
    eager_chars: int = 0

    def to_json(self) -> list[Any]:
        return [
            self.file,
            self.function,
            self.first_line,
            self.line,
            self.emitted,
            self.suppressed,
            self.eager,
            self.eager_chars,
        ]


class LogWatch:
    """Count log calls per call site through a wrapper of `Logger.isEnabledFor`."""

    def __init__(self) -> None:
        self.sites: dict[tuple[types.CodeType, int], LogSite] = {}
        self.untracked = 0
        self._original: Callable[[logging.Logger, int], bool] | None = None

    def install(self) -> None:
        original = logging.Logger.isEnabledFor
        self._original = original
        watch = self

        def is_enabled_for(logger: logging.Logger, level: int) -> bool:
            enabled = original(logger, level)
            watch._count(sys._getframe(1), enabled)
            return enabled

        logging.Logger.isEnabledFor = is_enabled_for  # type: ignore[method-assign, assignment]

    def stop(self) -> dict[str, Any]:
        if self._original is not None:
            logging.Logger.isEnabledFor = self._original  # type: ignore[method-assign, assignment]
            self._original = None
        return {
            "sites": [site.to_json() for site in self.sites.values()],
            "untracked": self.untracked,
        }

    def _count(self, frame: types.FrameType, enabled: bool) -> None:
        """Count a call made through a logging method. A user's own level check is not counted."""
        if os.path.normcase(frame.f_code.co_filename) != _LOGGING_FILE:
            return
        entry = frame
        caller = frame.f_back
        while caller is not None and os.path.normcase(caller.f_code.co_filename) == _LOGGING_FILE:
            entry = caller
            caller = caller.f_back
        if caller is None or caller.f_code.co_filename.startswith(_AITAX_DIR):
            return

        site = self._site(caller)
        if site is None:
            return
        if enabled:
            site.emitted += 1
            return
        site.suppressed += 1
        message = _eager_message(entry, caller)
        if message is not None:
            site.eager += 1
            site.eager_chars += len(message)

    def _site(self, caller: types.FrameType) -> LogSite | None:
        key = (caller.f_code, caller.f_lineno)
        site = self.sites.get(key)
        if site is not None:
            return site
        if len(self.sites) >= MAX_SITES:
            self.untracked += 1
            return None
        code = caller.f_code
        site = LogSite(code.co_filename, code.co_qualname, code.co_firstlineno, caller.f_lineno)
        self.sites[key] = site
        return site


def _eager_message(entry: types.FrameType, caller: types.FrameType) -> str | None:
    """Return the message of a call whose text was formatted before the call, else None."""
    arguments = entry.f_locals
    message = arguments.get("msg")
    if not isinstance(message, str) or arguments.get("args"):
        return None
    if message in caller.f_code.co_consts:
        return None
    return message


def read_log_sites(data: object) -> list[LogSite]:
    """Rebuild a pass's log call sites from their JSON form; empty when the pass has none."""
    if not isinstance(data, dict):
        return []
    return [
        LogSite(str(row[0]), str(row[1]), int(row[2]), int(row[3]), *map(int, row[4:8]))
        for row in data.get("sites", [])
    ]
