"""Saving and loading `run.json`. Loading reads JSON only, never pickle."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aitax.capture.capture_file import write_json_atomic
from aitax.errors import ReportLoadError
from aitax.model.run import (
    SCHEMA_VERSION,
    AllocationSite,
    ChildProcesses,
    Cost,
    Environment,
    Finding,
    Hotspot,
    LeakSuspect,
    LineProfile,
    LineTiming,
    MemoryProfile,
    PassResult,
    RequestStats,
    Run,
    StageMemory,
    StageStats,
)

RUN_FILE = "run.json"


def _finite(value: Any) -> Any:
    """Replace NaN and infinities, which JSON cannot hold, with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def save_run(run: Run, path: Path) -> None:
    write_json_atomic(path, _finite(run.to_json_dict()))


def report_folder(path: Path) -> Path:
    """Return the report folder that `path` names: the folder itself, or the folder of its run.json."""
    folder = path.parent if path.name == RUN_FILE and path.is_file() else path
    if not folder.is_dir():
        raise ReportLoadError(
            f"report folder {folder} not found; pass a folder that aitax run wrote"
        )
    return folder


def load_run(path: Path) -> Run:
    """Read a `run.json`; raise ReportLoadError with the reason when it is missing or invalid."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ReportLoadError(
            f"{path} not found; pass a report folder that aitax run wrote"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportLoadError(
            f"{path} is unreadable ({error}); rerun aitax run to write it again"
        ) from None
    except RecursionError:
        # json nests one Python call per array or object level, so a deeply nested
        # document exhausts the interpreter's recursion limit before it is parsed.
        raise ReportLoadError(
            f"{path} is invalid: its JSON is nested too deeply to parse; "
            "rerun aitax run to write it again"
        ) from None
    return run_from_dict(data, path)


def run_from_dict(data: Any, source: Path | str = "run.json") -> Run:
    """Build a Run from parsed JSON; raise ReportLoadError on a wrong shape or version."""
    if not isinstance(data, dict):
        raise ReportLoadError(f"{source} does not hold a JSON object; it is not an aitax run.json")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportLoadError(
            f"{source} has schema_version {version!r}, but this aitax reads {SCHEMA_VERSION}; "
            "rerun aitax run with this version"
        )
    try:
        return _build(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ReportLoadError(
            f"{source} is invalid ({type(error).__name__}: {error}); "
            "rerun aitax run to write it again"
        ) from None


def _build(data: dict[str, Any]) -> Run:
    fields = dict(data)
    fields["requests"] = RequestStats(**data["requests"])
    fields["stages"] = [StageStats(**item) for item in data["stages"]]
    fields["hotspots"] = [Hotspot(**item) for item in data["hotspots"]]
    fields["findings"] = [Finding(**item) for item in data["findings"]]
    fields["passes"] = [PassResult(**item) for item in data["passes"]]
    fields["cost"] = Cost(**data["cost"])
    fields["environment"] = Environment(**data["environment"])
    fields["lines"] = [_line_profile(item) for item in data.get("lines", [])]
    fields["memory"] = _memory(data["memory"]) if data.get("memory") is not None else None
    children = data.get("child_processes")
    fields["child_processes"] = (
        None if children is None else ChildProcesses.from_json_dict(children)
    )
    return Run(**fields)


def _line_profile(data: dict[str, Any]) -> LineProfile:
    fields = dict(data)
    fields["lines"] = [LineTiming(**item) for item in data["lines"]]
    return LineProfile(**fields)


def _memory(data: dict[str, Any]) -> MemoryProfile:
    fields = dict(data)
    fields["peak_locations"] = [AllocationSite(**item) for item in data["peak_locations"]]
    fields["by_stage"] = [StageMemory(**item) for item in data["by_stage"]]
    fields["top_allocations"] = [AllocationSite(**item) for item in data["top_allocations"]]
    fields["leak_suspects"] = [LeakSuspect(**item) for item in data["leak_suspects"]]
    return MemoryProfile(**fields)
