"""Typed errors. The CLI prints each as one line and exits with its status."""

from __future__ import annotations

# Exit statuses of the aitax command itself, documented in the README. A run
# whose passes finished exits with the target's own status instead.
EXIT_OK = 0
# aitax check found an objective not met or a significant regression, or aitax
# compare --fail-on-regression found a significant regression.
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TARGET_INVALID = 3
EXIT_OUTPUT_EXISTS = 4
EXIT_OUTPUT_UNWRITABLE = 5
EXIT_BAD_REPORT = 6
EXIT_CONFIG_INVALID = 7
EXIT_INTERRUPTED = 130


class AitaxError(Exception):
    """Root of the errors that aitax reports to the user without a traceback."""

    exit_code = EXIT_USAGE


class TargetError(AitaxError):
    """The script or module to run is missing, unreadable or not valid Python."""

    exit_code = EXIT_TARGET_INVALID


class OutputExistsError(AitaxError):
    """The report folder already exists and `--force` was not given."""

    exit_code = EXIT_OUTPUT_EXISTS


class OutputError(AitaxError):
    """The report folder cannot be created or written."""

    exit_code = EXIT_OUTPUT_UNWRITABLE


class ReportLoadError(AitaxError):
    """A report folder or its `run.json` is missing, unreadable or invalid."""

    exit_code = EXIT_BAD_REPORT


class ConfigError(AitaxError):
    """The `[tool.aitax]` table in a pyproject.toml is invalid."""

    exit_code = EXIT_CONFIG_INVALID
