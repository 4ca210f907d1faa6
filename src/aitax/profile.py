"""`aitax run` as a library call: run the passes, analyse them, write the report folder."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aitax.analysis.build import CpuProfile, RunInputs, build_run, load_samples
from aitax.analysis.cost import DEFAULT_INSTANCE_COST_PER_HOUR
from aitax.analysis.line_selection import DEFAULT_LINE_FUNCTIONS, choose_line_functions
from aitax.analysis.memory import MemoryCaptureError, analyse_memory
from aitax.analysis.samples import Sample
from aitax.capture.capture_file import Capture
from aitax.capture.cpu import LABELS_FILE, SESSION_FILE
from aitax.capture.memory import BOUNDARIES_FILE
from aitax.capture.memory import CAPTURE_FILE as MEMORY_CAPTURE_FILE
from aitax.capture.runner import (
    PassOutcome,
    PassSettings,
    ProgressCallback,
    run_passes,
)
from aitax.capture.target import Target, target_source
from aitax.config import Config, load_config
from aitax.environment import collect_environment
from aitax.errors import OutputError, OutputExistsError
from aitax.model.io import RUN_FILE, save_run
from aitax.model.run import MemoryProfile, PassResult, Run

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
CAPTURES_DIR = "captures"


@dataclass(frozen=True)
class ProfileOptions:
    """Everything `aitax run` needs, parsed from the command line."""

    target: Target
    passes: Sequence[str]
    out_dir: Path | None = None
    force: bool = False
    interval_s: float = 0.001
    instance_cost_per_hour: float | None = None
    command: Sequence[str] = field(default_factory=list)
    line_functions: int = DEFAULT_LINE_FUNCTIONS
    line_profile: Sequence[str] = ()
    native_memory: bool = False
    timeout_s: float | None = None
    stdout_to_stderr: bool = False


@dataclass
class ProfileResult:
    run: Run
    report_dir: Path
    stop_exit_code: int | None


def default_report_dir(target: Target, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return Path(target.cwd, "reports", f"{target.label}-{stamp}")


def prepare_report_dir(path: Path, force: bool, target: Target) -> Path:
    """Create the report folder.

    With `force`, an existing folder is reused only when every entry in it is one
    that aitax writes, and only those entries are removed. The working directory,
    the target's folders, their ancestors, the home directory and the filesystem
    root are never reused.
    """
    if os.path.lexists(path):
        _check_not_protected(path, target)
        if not force:
            raise OutputExistsError(
                f"report folder {path} already exists; pass --force to replace it, or -o DIR"
            )
        _clear_report_dir(path)
    try:
        (path / CAPTURES_DIR).mkdir(parents=True)
    except OSError as error:
        raise OutputError(
            f"cannot create report folder {path}: {error.strerror}; choose a writable -o DIR"
        ) from None
    return path


def _check_not_protected(path: Path, target: Target) -> None:
    """Raise OutputExistsError when `path` is a folder that aitax must never replace."""
    reason = _protection_reason(Path(os.path.realpath(path)), target)
    if reason is not None:
        raise OutputExistsError(
            f"report folder {path} {reason}, so aitax never replaces it; choose another -o DIR"
        )


def _protection_reason(folder: Path, target: Target) -> str | None:
    if folder.parent == folder:
        return "is the filesystem root"
    for protected, description in _protected_paths(target):
        if folder == protected:
            return f"is {description}"
        if folder in protected.parents:
            return f"contains {description}"
    return None


def _protected_paths(target: Target) -> list[tuple[Path, str]]:
    """Return the paths whose folders -o must not name, each with its description."""
    protected = [
        (Path(os.path.realpath(os.getcwd())), "the working directory"),
        (Path(os.path.realpath(target.cwd)), "the target's working directory"),
    ]
    source = target_source(target)
    if source is not None:
        # Both the path as given and the file a symbolic link points to.
        protected.append((Path(os.path.realpath(source.parent), source.name), "the target"))
        protected.append((Path(os.path.realpath(source)), "the target"))
    try:
        protected.append((Path(os.path.realpath(Path.home())), "the home directory"))
    except (RuntimeError, KeyError):
        logger.debug("no home directory to protect: HOME is unset and the user has no entry")
    return protected


def _report_entries() -> frozenset[str]:
    """Return the names of the entries that `aitax run` writes in a report folder."""
    # Imported here because the exports module imports pyinstrument's renderers.
    from aitax.report.exports import PROF_FILE, PYINSTRUMENT_HTML, SPEEDSCOPE_FILE, TRACE_FILE

    return frozenset({
        RUN_FILE, REPORT_FILE, CAPTURES_DIR, MEMORY_FLAMEGRAPH,
        PROF_FILE, PYINSTRUMENT_HTML, SPEEDSCOPE_FILE, TRACE_FILE,
    })  # fmt: skip


def _foreign_entry(entry: os.DirEntry[str], report_entries: frozenset[str]) -> str | None:
    """Describe `entry` when aitax did not write it; return None for an aitax entry."""
    if entry.is_symlink():
        return f"the symbolic link {entry.name!r}"
    if entry.name == CAPTURES_DIR:
        return None if entry.is_dir(follow_symlinks=False) else f"{entry.name!r}, not a folder"
    if entry.name in report_entries or _is_atomic_write_leftover(entry.name, report_entries):
        return None if entry.is_file(follow_symlinks=False) else f"{entry.name!r}, not a file"
    return repr(entry.name)


def _is_atomic_write_leftover(name: str, report_entries: frozenset[str]) -> bool:
    """Match the `.NAME.XXXXXXXX.tmp` file that an interrupted atomic write leaves behind."""
    return (
        name.startswith(".")
        and name.endswith(".tmp")
        and any(name.startswith(f".{entry}.") for entry in report_entries)
    )


def _clear_report_dir(path: Path) -> None:
    """Remove the aitax entries of the report folder `path`, or raise if it contains anything else."""
    if path.is_symlink():
        raise OutputExistsError(
            f"report folder {path} is a symbolic link, so --force does not replace it; "
            "choose another -o DIR"
        )
    if not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a folder; choose another -o DIR")

    report_entries = _report_entries()
    try:
        with os.scandir(path) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        raise OutputError(
            f"cannot read report folder {path}: {error.strerror}; choose another -o DIR"
        ) from None
    for entry in entries:
        foreign = _foreign_entry(entry, report_entries)
        if foreign is not None:
            raise OutputExistsError(
                f"folder {path} is not an aitax report folder because it contains {foreign}; "
                "--force replaces only report folders, so choose another -o DIR"
            )

    logger.info("replacing the report folder %s (--force)", path)
    try:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                # rmtree removes the symbolic links inside the folder without following them.
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    except OSError as error:
        raise OutputError(
            f"cannot clear report folder {path}: {error.strerror}; choose a writable -o DIR"
        ) from None


def profile_target(
    options: ProfileOptions, on_progress: ProgressCallback | None = None
) -> ProfileResult:
    """Run every pass of `options.target` and write run.json, report.html and the profile files."""
    started_at = datetime.now(UTC)
    # An invalid [tool.aitax] stops the run before the report folder is made.
    config = load_config(
        Path(options.target.cwd, options.target.name)
        if options.target.kind == "script"
        else Path(options.target.cwd)
    )
    report_dir = prepare_report_dir(
        options.out_dir or default_report_dir(options.target, started_at),
        options.force,
        options.target,
    )
    captures_dir = report_dir / CAPTURES_DIR

    settings = PassSettings(
        options.interval_s, options.native_memory, options.timeout_s, options.stdout_to_stderr
    )
    cpu = _CpuData(captures_dir, config)

    def spec_extras(name: str, earlier: list[PassOutcome]) -> dict[str, Any] | str:
        if name != "line":
            return {}
        return _line_spec(options, cpu, earlier)

    # Each pass's capture is analysed in another process as soon as the pass ends,
    # while the later passes run: the CPU views after the CPU pass, and the memory
    # analysis after the memory pass.
    with (
        _DeferredSignals() as deferred,
        ProcessPoolExecutor(
            max_workers=2,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_interrupts,
        ) as pool,
    ):
        background = _Background(pool, captures_dir, report_dir)
        result = run_passes(
            options.target,
            options.passes,
            captures_dir,
            settings,
            on_progress,
            spec_extras,
            background.on_pass_done,
        )
        outcomes = result.outcomes

        artifacts: dict[str, str] = {}
        memory = background.finish_memory(outcomes, artifacts)
        inputs = _inputs(options, config, started_at, outcomes, artifacts, cpu)
        inputs.memory = memory
        inputs.line_results = _line_results(outcomes)
        inputs.line_capture = next((o.capture for o in outcomes if o.name == "line"), None)
        inputs.memory_capture = next((o.capture for o in outcomes if o.name == "memory"), None)
        run = build_run(inputs)
        run.artifacts.update(_finish_exports(background.exports))
        if result.stop_reason is not None:
            run.partial = True
            run.stop_reason = result.stop_reason
            run.notes.insert(
                0,
                f"Partial run, {result.stop_reason}: this report holds what was measured until then.",
            )
        _write_report(run, report_dir)
    return ProfileResult(run, report_dir, result.stop_exit_code or deferred.exit_code)


class _DeferredSignals:
    """Hold SIGINT and SIGTERM off while the passes' captures are analysed and written.

    The runner handles signals while a pass runs. After the last pass, everything
    is measured and only the report is left to write, so a signal then lets the
    report finish and sets the exit status to 130 or 143.
    """

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> _DeferredSignals:
        for received in (signal.SIGINT, signal.SIGTERM):
            self._previous[received] = signal.signal(received, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for received, handler in self._previous.items():
            signal.signal(received, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        received = signal.Signals(signum)
        if self.exit_code is None:
            logger.warning(
                "received %s; writing the report of what was measured first", received.name
            )
        self.exit_code = 130 if received == signal.SIGINT else 143


def _inputs(
    options: ProfileOptions,
    config: Config,
    started_at: datetime,
    outcomes: list[PassOutcome],
    artifacts: dict[str, str],
    cpu: _CpuData,
) -> RunInputs:
    captures = {outcome.name: outcome.capture for outcome in outcomes}
    cost = options.instance_cost_per_hour
    if cost is None:
        cost = config.instance_cost_per_hour or DEFAULT_INSTANCE_COST_PER_HOUR
    return RunInputs(
        target=options.target.name,
        argv=list(options.target.argv),
        started_at=started_at,
        passes=[_pass_result(outcome) for outcome in outcomes],
        clean=captures.get("clean"),
        cpu_capture=captures.get("cpu"),
        cpu=cpu.profile(captures.get("cpu")),
        samples=cpu.samples(captures.get("cpu")),
        config=config,
        instance_cost_per_hour=cost,
        environment=collect_environment(
            options.command or options.target.argv, Path(options.target.cwd)
        ),
        artifacts=artifacts,
    )


def _pass_result(outcome: PassOutcome) -> PassResult:
    sample_count = None
    if outcome.capture is not None:
        count = outcome.capture.extra.get("sample_count")
        sample_count = int(count) if isinstance(count, int) else None
    status: Literal["ok", "failed", "skipped"] = "failed"
    if outcome.status in ("ok", "skipped"):
        status = "ok" if outcome.status == "ok" else "skipped"
    return PassResult(
        name=outcome.name,
        status=status,
        wall_s=outcome.wall_s,
        exit_code=outcome.exit_code,
        error=outcome.error,
        sample_count=sample_count,
    )


def _load_cpu_profile(capture: Capture | None, captures_dir: Path) -> CpuProfile | None:
    """Read the CPU pass's pyinstrument session (JSON) and its stage labels."""
    if capture is None:
        return None
    from pyinstrument.session import Session

    try:
        session = Session.load(str(captures_dir / SESSION_FILE))
        labels = json.loads((captures_dir / LABELS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as error:
        logger.warning(
            "the CPU pass's session is unreadable (%s); reporting without samples", error
        )
        return None
    return CpuProfile(
        frame_records=session.frame_records,
        labels=labels,
        sys_path=session.sys_path,
        sys_prefixes=session.sys_prefixes,
        wall_s=capture.wall_s,
    )


def _finish_exports(exports: Future[dict[str, str]] | None) -> dict[str, str]:
    if exports is None:
        return {}
    try:
        return exports.result()
    except (OSError, ValueError, KeyError, BrokenProcessPool) as error:
        logger.warning("could not export the CPU views: %s", error)
        return {}


def _write_report(run: Run, report_dir: Path) -> None:
    from aitax.report.html import write_html

    run.artifacts["run data (JSON)"] = RUN_FILE
    try:
        save_run(run, report_dir / RUN_FILE)
        write_html(run, report_dir / REPORT_FILE)
    except OSError as error:
        raise OutputError(
            f"cannot write the report in {report_dir}: {error.strerror or error}; the passes' "
            f"captures are in {report_dir / CAPTURES_DIR}. Free space or fix permissions, then "
            f"run aitax report {report_dir} if run.json was written"
        ) from None


class _CpuData:
    """The CPU pass's profile and samples, read and classified once for every use."""

    def __init__(self, captures_dir: Path, config: Config) -> None:
        self.captures_dir = captures_dir
        self.config = config
        self._profile: CpuProfile | None = None
        self._samples: list[Sample] | None = None
        self._read = False

    def profile(self, capture: Capture | None) -> CpuProfile | None:
        if not self._read:
            self._profile = _load_cpu_profile(capture, self.captures_dir)
            self._read = True
        return self._profile

    def samples(self, capture: Capture | None) -> list[Sample]:
        if self._samples is None:
            self._samples = load_samples(self.profile(capture), self.config)
        return self._samples


def _line_spec(
    options: ProfileOptions, cpu: _CpuData, earlier: list[PassOutcome]
) -> dict[str, Any] | str:
    """Choose the line pass's functions from the CPU pass, plus those named on the command line."""
    cpu_capture = next((o.capture for o in earlier if o.name == "cpu"), None)
    samples = cpu.samples(cpu_capture)
    chosen = (
        choose_line_functions(samples, options.line_functions) if options.line_functions else []
    )
    targets = [
        {
            "file": frame.file,
            "line": frame.line,
            "qualname": frame.function,
            "module": None,
            "label": f"{frame.file}:{frame.line}",
        }
        for frame in chosen
    ]
    if not targets and not options.line_profile:
        if cpu_capture is None:
            return "no CPU pass to choose functions from; name them with --line-profile module:qualname"
        return "the CPU pass found no user functions to line-profile"
    return {"line_targets": targets, "line_profile": list(options.line_profile)}


def _line_results(outcomes: list[PassOutcome]) -> list[dict[str, Any]] | None:
    capture = next((o.capture for o in outcomes if o.name == "line"), None)
    if capture is None:
        return None
    results = capture.extra.get("line_functions")
    return list(results) if isinstance(results, list) else None


def _ignore_interrupts() -> None:
    """Leave Ctrl-C to the runner: it stops the pass and the analysis of what was measured goes on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Background:
    """Analysis that starts when its pass ends, in `pool`, while the later passes run."""

    def __init__(self, pool: ProcessPoolExecutor, captures_dir: Path, report_dir: Path) -> None:
        self.pool = pool
        self.captures_dir = captures_dir
        self.report_dir = report_dir
        self.exports: Future[dict[str, str]] | None = None
        self.memory: Future[MemoryProfile] | None = None
        self.flamegraph: subprocess.Popen[str] | None = None
        self.memory_arguments: tuple[Any, ...] = ()

    def on_pass_done(self, outcome: PassOutcome, earlier: list[PassOutcome]) -> None:
        if outcome.capture is None:
            return
        if outcome.name == "cpu":
            self._start_exports()
        elif outcome.name == "memory":
            self._start_memory(outcome, earlier)

    def _start_exports(self) -> None:
        from aitax.report.exports import export_cpu_views

        session_path = self.captures_dir / SESSION_FILE
        if session_path.exists():
            self.exports = self.pool.submit(export_cpu_views, session_path, self.report_dir)

    def _start_memory(self, outcome: PassOutcome, earlier: list[PassOutcome]) -> None:
        assert outcome.capture is not None
        capture_path = self.captures_dir / MEMORY_CAPTURE_FILE
        # The clean pass's peak RSS is what the program uses without memray's own overhead.
        clean = next((o.capture for o in earlier if o.name == "clean" and o.capture), None)
        rss_source = clean if clean is not None else outcome.capture
        # memray renders its flame graph in its own process meanwhile.
        self.flamegraph = _start_memray_flamegraph(capture_path, self.report_dir)
        self.memory_arguments = (
            capture_path,
            self.captures_dir / BOUNDARIES_FILE,
            rss_source.peak_rss_bytes,
            bool(outcome.capture.extra.get("native_traces")),
        )
        self.memory = self.pool.submit(analyse_memory, *self.memory_arguments)

    def finish_memory(
        self, outcomes: list[PassOutcome], artifacts: dict[str, str]
    ) -> MemoryProfile | None:
        """Wait for the memory analysis; mark the memory pass failed when it fails."""
        if self.memory is None:
            return None
        outcome = next(o for o in outcomes if o.name == "memory")
        try:
            memory: MemoryProfile | None = self._memory_result()
        except (MemoryCaptureError, OSError, ValueError) as error:
            logger.warning("memory analysis failed: %s", error)
            outcome.status = "failed"
            outcome.error = f"the memray capture could not be analysed: {error}"
            memory = None

        if self.flamegraph is not None and _finish_memray_flamegraph(self.flamegraph):
            artifacts["memray flame graph"] = MEMORY_FLAMEGRAPH
        return memory

    def _memory_result(self) -> MemoryProfile:
        assert self.memory is not None
        try:
            return self.memory.result()
        except BrokenProcessPool:
            logger.warning("the analysis process ended early; analysing memory in this one")
            return analyse_memory(*self.memory_arguments)


MEMORY_FLAMEGRAPH = "memory-flamegraph.html"


def _start_memray_flamegraph(capture_path: Path, report_dir: Path) -> subprocess.Popen[str]:
    """Start rendering memray's own flame graph of the capture next to the report."""
    output = report_dir / MEMORY_FLAMEGRAPH
    # -P keeps the working directory off sys.path, so that a project's own
    # random.py or json.py cannot shadow the modules memray imports.
    command = [sys.executable, "-P", "-m", "memray", "flamegraph", "--force", "-o", str(output)]
    return subprocess.Popen(
        [*command, str(capture_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_memray_flamegraph(process: subprocess.Popen[str]) -> bool:
    try:
        _, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        logger.warning("memray flamegraph timed out after 600 s; the report links no flame graph")
        return False
    if process.returncode != 0:
        lines = stderr.strip().splitlines() or ["no error output"]
        logger.warning("memray flamegraph failed: %s", lines[-1][:300])
        return False
    return True
