"""Run the target once per pass, each pass in its own process, and collect the captures."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aitax.capture.capture_file import Capture, read_capture, write_json_atomic
from aitax.capture.child import CAPTURE_NAME
from aitax.capture.target import Target

logger = logging.getLogger(__name__)

# The passes in the order they run. The clean pass runs first and alone holds the
# terminal, so the target's output appears once, as under python.
PASS_NAMES: tuple[str, ...] = ("clean", "cpu", "line", "memory")
DEFAULT_PASSES: tuple[str, ...] = PASS_NAMES

# Seconds a pass gets to write its capture after it was asked to stop.
STOP_GRACE_S = 10.0


@dataclass
class PassOutcome:
    """How one pass ended, and what it captured."""

    name: str
    status: str
    wall_s: float
    exit_code: int | None
    error: str | None
    capture: Capture | None
    log_path: Path | None


@dataclass(frozen=True)
class PassSettings:
    interval_s: float = 0.001
    native_memory: bool = False


ProgressCallback = Callable[[str, str], None]
# Returns what a pass's spec needs from earlier passes (the line pass's functions),
# or None when the pass has nothing to do, with the reason.
SpecExtras = Callable[[str, list["PassOutcome"]], "dict[str, Any] | str"]


def run_passes(
    target: Target,
    passes: Sequence[str],
    captures_dir: Path,
    settings: PassSettings,
    on_progress: ProgressCallback | None = None,
    spec_extras: SpecExtras | None = None,
) -> tuple[list[PassOutcome], bool]:
    """Run each pass in turn; return the outcomes and whether the user interrupted the run."""
    stdin_bytes = _read_stdin_once()
    outcomes: list[PassOutcome] = []
    for index, name in enumerate(passes):
        extras = spec_extras(name, outcomes) if spec_extras else {}
        if isinstance(extras, str):
            outcomes.append(PassOutcome(name, "skipped", 0.0, None, extras, None, None))
            if on_progress:
                on_progress(name, "skipped")
            continue
        if on_progress:
            on_progress(name, "start")
        outcome, interrupted = _run_one(
            target, name, captures_dir, settings, stdin_bytes, index == 0, extras
        )
        outcomes.append(outcome)
        if on_progress:
            on_progress(name, outcome.status)
        if interrupted:
            return outcomes, True
    return outcomes, False


def _read_stdin_once() -> bytes | None:
    """Read piped standard input, so that every pass gets the same bytes; None for a terminal."""
    if sys.stdin is None or sys.stdin.closed:
        return None
    try:
        if sys.stdin.isatty():
            return None
        return sys.stdin.buffer.read()
    except (OSError, ValueError):
        return None


def _run_one(
    target: Target,
    name: str,
    captures_dir: Path,
    settings: PassSettings,
    stdin_bytes: bytes | None,
    owns_terminal: bool,
    extras: dict[str, Any],
) -> tuple[PassOutcome, bool]:
    spec_path = captures_dir / f"{name}.spec.json"
    write_json_atomic(spec_path, {**_spec(target, name, captures_dir, settings), **extras})
    log_path = None if owns_terminal else captures_dir / f"{name}.log"
    command = [sys.executable, "-P", "-m", "aitax.capture.child", str(spec_path)]

    started = time.perf_counter()
    interrupted = False
    with _output_stream(log_path) as output:
        process = subprocess.Popen(
            command,
            cwd=target.cwd,
            stdin=subprocess.PIPE if stdin_bytes is not None else (None if owns_terminal else subprocess.DEVNULL),
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )
        try:
            if stdin_bytes is not None:
                _feed_stdin(process, stdin_bytes)
            returncode = process.wait()
        except KeyboardInterrupt:
            interrupted = True
            returncode = _stop(process)
    wall_s = time.perf_counter() - started
    return _outcome(name, captures_dir, returncode, wall_s, log_path), interrupted


def _spec(target: Target, name: str, captures_dir: Path, settings: PassSettings) -> dict[str, Any]:
    return {
        "pass": name,
        "out_dir": str(captures_dir.resolve()),
        "interval": settings.interval_s,
        "native": settings.native_memory,
        "target": {"kind": target.kind, "name": target.name, "args": list(target.args)},
    }


class _output_stream:
    """Open the pass's log file, or pass the terminal through when `path` is None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes] | None:
        if self.path is not None:
            self.handle = self.path.open("wb")
        return self.handle

    def __exit__(self, *exc_info: object) -> None:
        if self.handle is not None:
            self.handle.close()


def _feed_stdin(process: subprocess.Popen[bytes], payload: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except BrokenPipeError:
        logger.debug("the target closed standard input before reading all of it")


def _stop(process: subprocess.Popen[bytes]) -> int:
    """Let the pass write its capture after Ctrl-C; terminate it if it does not stop in time."""
    try:
        return process.wait(timeout=STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        logger.warning("pass did not stop within %.0f s of the interrupt; terminating it", STOP_GRACE_S)
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def _outcome(
    name: str, captures_dir: Path, returncode: int, wall_s: float, log_path: Path | None
) -> PassOutcome:
    capture_path = captures_dir / CAPTURE_NAME.format(pass_name=name)
    if not capture_path.exists():
        reason = _missing_capture_reason(returncode, log_path)
        logger.warning("pass %s left no capture: %s", name, reason)
        exit_code = returncode if returncode >= 0 else 128 - returncode
        return PassOutcome(name, "failed", wall_s, exit_code, reason, None, log_path)

    try:
        capture = read_capture(capture_path)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
        reason = f"its capture {capture_path.name} is unreadable: {error}"
        logger.warning("pass %s failed: %s", name, reason)
        return PassOutcome(name, "failed", wall_s, returncode, reason, None, log_path)
    return PassOutcome(name, "ok", wall_s, capture.exit_code, None, capture, log_path)


def _missing_capture_reason(returncode: int, log_path: Path | None) -> str:
    if returncode < 0:
        reason = f"the process was killed by signal {signal.Signals(-returncode).name}"
    else:
        reason = (
            f"the process exited with status {returncode} before writing its capture "
            "(os._exit, or a crash inside the interpreter)"
        )
    if log_path is not None:
        reason += f"; see {log_path.name}"
    return reason


def remove_spec_files(captures_dir: Path) -> None:
    for path in captures_dir.glob("*.spec.json"):
        path.unlink(missing_ok=True)


def exit_code_of(outcomes: Sequence[PassOutcome]) -> int:
    """The target's exit status: the clean pass's, or the first pass that has one."""
    for outcome in outcomes:
        if outcome.exit_code is not None:
            return outcome.exit_code
    return 1
