"""Run the target once per pass, each pass in its own process, and collect the captures."""

from __future__ import annotations

import functools
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

from aitax.capture.capture_file import Capture, read_capture
from aitax.capture.child import CAPTURE_NAME
from aitax.capture.target import Target

logger = logging.getLogger(__name__)

# The passes in the order they run. The clean pass runs first and is the only one
# connected to the terminal, so the target's output appears once, as under python.
# The memory pass runs before the line pass, so that its capture is analysed in
# another process while the line pass runs.
PASS_NAMES: tuple[str, ...] = ("clean", "cpu", "memory", "line")
DEFAULT_PASSES: tuple[str, ...] = PASS_NAMES

# Seconds a pass gets to write its capture after it was asked to stop.
STOP_GRACE_S = 10.0


@dataclass
class PassOutcome:
    """The outcome of one pass, and its capture."""

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
    timeout_s: float | None = None
    # Send the target's standard output to standard error, for `aitax run --json`.
    stdout_to_stderr: bool = False


class _Stop:
    """Why the run stopped early: a signal the user sent, or the --timeout deadline."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.exit_code: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def request(self, reason: str, exit_code: int, forward: signal.Signals) -> None:
        if self.reason is None:
            self.reason = reason
            self.exit_code = exit_code
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(forward)

    def on_signal(self, signum: int, frame: object) -> None:
        received = signal.Signals(signum)
        exit_code = 130 if received == signal.SIGINT else 143
        self.request(f"interrupted by {received.name}", exit_code, received)


ProgressCallback = Callable[[str, str], None]
# Returns what a pass's spec needs from earlier passes (the line pass's functions),
# or None when the pass has nothing to do, with the reason.
SpecExtras = Callable[[str, list["PassOutcome"]], "dict[str, Any] | str"]
# Called with each finished pass's outcome and the outcomes before it.
PassDone = Callable[["PassOutcome", list["PassOutcome"]], None]


@dataclass
class RunnerResult:
    outcomes: list[PassOutcome]
    stop_reason: str | None
    stop_exit_code: int | None


def run_passes(
    target: Target,
    passes: Sequence[str],
    captures_dir: Path,
    settings: PassSettings,
    on_progress: ProgressCallback | None = None,
    spec_extras: SpecExtras | None = None,
    on_pass_done: PassDone | None = None,
) -> RunnerResult:
    """Run each pass in turn, until all have run or a signal or the timeout stops the run.

    SIGINT and SIGTERM are forwarded to the running pass, which unwinds the target
    and writes what it measured; the passes after it do not run.
    """
    stop = _Stop()
    handlers = {sig: signal.signal(sig, stop.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcomes = _run_all(
            target, passes, captures_dir, settings, on_progress, spec_extras, on_pass_done, stop
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return RunnerResult(outcomes, stop.reason, stop.exit_code)


def _run_all(
    target: Target,
    passes: Sequence[str],
    captures_dir: Path,
    settings: PassSettings,
    on_progress: ProgressCallback | None,
    spec_extras: SpecExtras | None,
    on_pass_done: PassDone | None,
    stop: _Stop,
) -> list[PassOutcome]:
    deadline = None if settings.timeout_s is None else time.monotonic() + settings.timeout_s
    stdin_bytes = _read_stdin_once()
    outcomes: list[PassOutcome] = []
    for index, name in enumerate(passes):
        if stop.reason is not None:
            outcomes.append(
                PassOutcome(name, "skipped", 0.0, None, f"not run: {stop.reason}", None, None)
            )
            continue
        extras = spec_extras(name, outcomes) if spec_extras else {}
        if isinstance(extras, str):
            outcomes.append(PassOutcome(name, "skipped", 0.0, None, extras, None, None))
            if on_progress:
                on_progress(name, "skipped")
            continue
        if on_progress:
            on_progress(name, "start")
        outcome = _run_one(
            settings,
            target,
            name,
            captures_dir,
            stdin_bytes,
            index == 0,
            {**_settings_spec(settings), **extras},
            stop,
            deadline,
        )
        if on_pass_done:
            on_pass_done(outcome, list(outcomes))
        outcomes.append(outcome)
        if on_progress:
            on_progress(name, outcome.status)
    return outcomes


def _settings_spec(settings: PassSettings) -> dict[str, Any]:
    return {"interval": settings.interval_s, "native": settings.native_memory}


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
    settings: PassSettings,
    target: Target,
    name: str,
    captures_dir: Path,
    stdin_bytes: bytes | None,
    owns_terminal: bool,
    extras: dict[str, Any],
    stop: _Stop,
    deadline: float | None,
) -> PassOutcome:
    spec = {**_spec(target, name, captures_dir), **extras}
    log_path = None if owns_terminal else captures_dir / f"{name}.log"
    started = time.perf_counter()
    with _output_stream(log_path) as output:
        # The spec contains the target's arguments as given, secrets included, so it goes
        # to the pass through a pipe and is never written to disk. The pass reads the
        # pipe as the file /dev/fd/N, which Linux and macOS provide.
        spec_read, spec_write = os.pipe()
        command = [sys.executable, "-P", "-m", "aitax.capture.child", f"/dev/fd/{spec_read}"]
        try:
            process = subprocess.Popen(
                command,
                cwd=target.cwd,
                stdin=subprocess.PIPE
                if stdin_bytes is not None
                else (None if owns_terminal else subprocess.DEVNULL),
                stdout=output
                if output is not None
                else (sys.stderr if settings.stdout_to_stderr else None),
                stderr=subprocess.STDOUT if output is not None else None,
                pass_fds=(spec_read,),
            )
        except BaseException:
            os.close(spec_write)
            raise
        finally:
            # Only the pass keeps the read end, so writes fail once it exits.
            os.close(spec_read)
        stop.process = process
        try:
            _send_spec(spec_write, spec)
            if stdin_bytes is not None:
                _feed_stdin(process, stdin_bytes)
            returncode = _wait(process, stop, deadline)
        finally:
            stop.process = None
    wall_s = time.perf_counter() - started
    return _outcome(name, captures_dir, returncode, wall_s, log_path)


def _wait(process: subprocess.Popen[bytes], stop: _Stop, deadline: float | None) -> int:
    """Wait for the pass; at the deadline interrupt it, and escalate if it does not stop."""
    try:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop.request("stopped at the --timeout limit", 143, signal.SIGINT)
    except KeyboardInterrupt:
        stop.request("interrupted by SIGINT", 130, signal.SIGINT)
    return _stop_process(process)


@functools.cache
def startup_modules() -> tuple[str, ...]:
    """Return the top-level modules that a bare interpreter has imported before a script runs."""
    code = "import sys; print(' '.join(sorted({m.partition('.')[0] for m in sys.modules})))"
    try:
        completed = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("cannot list the interpreter's start-up modules: %s", error)
        return tuple(sys.builtin_module_names)
    return tuple(completed.stdout.split())


def _spec(target: Target, name: str, captures_dir: Path) -> dict[str, Any]:
    return {
        "pass": name,
        "out_dir": str(captures_dir.resolve()),
        "startup_modules": list(startup_modules()),
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


def _send_spec(pipe_fd: int, spec: dict[str, Any]) -> None:
    """Write the spec to the pass's pipe and close the pipe, so that the pass reads it to its end.

    A spec larger than the pipe's buffer blocks here until the pass reads it,
    which the pass does first. ASCII JSON carries arguments that are not valid
    UTF-8 (surrogate escapes) unchanged.
    """
    payload = json.dumps(spec).encode("ascii")
    try:
        with open(pipe_fd, "wb", closefd=True) as pipe:
            pipe.write(payload)
    except BrokenPipeError:
        logger.debug("the pass exited before reading its spec; see its exit status and log")


def _feed_stdin(process: subprocess.Popen[bytes], payload: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except BrokenPipeError:
        logger.debug("the target closed standard input before reading all of it")


def _stop_process(process: subprocess.Popen[bytes]) -> int:
    """Let the pass write its capture after an interrupt; terminate it if it does not stop in time."""
    try:
        return process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        logger.warning(
            "pass did not stop within %.0f s of the interrupt; sending SIGTERM", STOP_GRACE_S
        )
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


def exit_code_of(outcomes: Sequence[PassOutcome]) -> int:
    """Return the target's exit status: the clean pass's, or that of the first pass that has one."""
    for outcome in outcomes:
        if outcome.exit_code is not None:
            return outcome.exit_code
    return 1
