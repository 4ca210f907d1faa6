"""`aitax run` as a library call: run the passes, analyse them, write the report folder."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aitax.analysis.build import CpuProfile, RunInputs, build_run
from aitax.analysis.cost import DEFAULT_INSTANCE_COST_PER_HOUR
from aitax.capture.capture_file import Capture
from aitax.capture.cpu import LABELS_FILE, SESSION_FILE
from aitax.capture.runner import PassOutcome, PassSettings, ProgressCallback, run_passes
from aitax.capture.target import Target
from aitax.config import Config, load_config
from aitax.environment import collect_environment
from aitax.errors import OutputError, OutputExistsError
from aitax.model.io import RUN_FILE, save_run
from aitax.model.run import PassResult, Run

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


@dataclass
class ProfileResult:
    run: Run
    report_dir: Path
    interrupted: bool


def default_report_dir(target: Target, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    return Path(target.cwd, "reports", f"{target.label}-{stamp}")


def prepare_report_dir(path: Path, force: bool) -> Path:
    """Create the report folder; refuse to reuse an existing one without `force`."""
    if path.exists():
        if not force:
            raise OutputExistsError(
                f"report folder {path} already exists; pass --force to replace it, or -o DIR"
            )
        if not path.is_dir():
            raise OutputError(f"{path} exists and is not a folder; choose another -o DIR")
        logger.info("replacing the report folder %s (--force)", path)
        shutil.rmtree(path)
    try:
        (path / CAPTURES_DIR).mkdir(parents=True)
    except OSError as error:
        raise OutputError(
            f"cannot create report folder {path}: {error.strerror}; choose a writable -o DIR"
        )
    return path


def profile_target(options: ProfileOptions, on_progress: ProgressCallback | None = None) -> ProfileResult:
    """Run every pass of `options.target` and write run.json, report.html and the profile files."""
    started_at = datetime.now(UTC)
    report_dir = prepare_report_dir(
        options.out_dir or default_report_dir(options.target, started_at), options.force
    )
    captures_dir = report_dir / CAPTURES_DIR
    config = load_config(Path(options.target.cwd, options.target.name)
                         if options.target.kind == "script" else Path(options.target.cwd))

    outcomes, interrupted = run_passes(
        options.target, options.passes, captures_dir, PassSettings(options.interval_s), on_progress
    )

    artifacts = _export_views(outcomes, report_dir)
    run = build_run(_inputs(options, config, started_at, outcomes, artifacts, captures_dir))
    if interrupted:
        run.notes.insert(0, "The run was interrupted; this report holds what was measured before.")
    _write_report(run, report_dir)
    return ProfileResult(run, report_dir, interrupted)


def _inputs(
    options: ProfileOptions,
    config: Config,
    started_at: datetime,
    outcomes: list[PassOutcome],
    artifacts: dict[str, str],
    captures_dir: Path,
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
        cpu=_load_cpu_profile(captures.get("cpu"), captures_dir),
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
    return PassResult(
        name=outcome.name,
        status="ok" if outcome.status == "ok" else "failed",
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
        logger.warning("the CPU pass's session is unreadable (%s); reporting without samples", error)
        return None
    return CpuProfile(
        frame_records=session.frame_records,
        labels=labels,
        sys_path=session.sys_path,
        sys_prefixes=session.sys_prefixes,
        wall_s=capture.wall_s,
    )


def _export_views(outcomes: list[PassOutcome], report_dir: Path) -> dict[str, str]:
    from aitax.report.exports import export_cpu_views

    session_path = report_dir / CAPTURES_DIR / SESSION_FILE
    cpu_ok = any(o.name == "cpu" and o.capture is not None for o in outcomes)
    if not cpu_ok or not session_path.exists():
        return {}
    try:
        return export_cpu_views(session_path, report_dir)
    except (OSError, ValueError, KeyError) as error:
        logger.warning("could not export the CPU views: %s", error)
        return {}


def _write_report(run: Run, report_dir: Path) -> None:
    from aitax.report.html import write_html

    run.artifacts["run data (JSON)"] = RUN_FILE
    save_run(run, report_dir / RUN_FILE)
    write_html(run, report_dir / REPORT_FILE)
