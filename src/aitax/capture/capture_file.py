"""The capture file that each pass writes: JSON, never pickle, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aitax.markers import RequestEvent, StageEvent

CAPTURE_FORMAT = 1

_STAGE_COLUMNS = (
    "name", "start_ns", "end_ns", "cpu_ns", "child_ns", "child_cpu_ns",
    "thread_id", "request_id", "key",
)  # fmt: skip
_REQUEST_COLUMNS = ("request_id", "size", "start_ns", "end_ns", "thread_id")


@dataclass
class Capture:
    """The measurements of one pass of the target."""

    pass_name: str
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int | None
    traceback: str | None
    stages: list[StageEvent] = field(default_factory=list)
    requests: list[RequestEvent] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def hash_key(key: object) -> str | None:
    """Return a short digest of a fetch key, so that reports count keys without showing them."""
    if key is None:
        return None
    return hashlib.blake2b(repr(key).encode("utf-8", "backslashreplace"), digest_size=8).hexdigest()


def write_json_atomic(path: Path, data: object) -> None:
    """Write `data` as JSON to a temporary file beside `path`, then rename it into place."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    write_text_atomic(path, text)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it, with the usual file mode."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only; give it the mode open() would.
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def capture_to_json(capture: Capture) -> dict[str, Any]:
    stage_rows = [
        [getattr(event, column) for column in _STAGE_COLUMNS[:-1]] + [hash_key(event.key)]
        for event in capture.stages
    ]
    request_rows = [
        [getattr(event, column) for column in _REQUEST_COLUMNS] for event in capture.requests
    ]
    return {
        "format": CAPTURE_FORMAT,
        "pass": capture.pass_name,
        "exit_code": capture.exit_code,
        "wall_s": capture.wall_s,
        "cpu_s": capture.cpu_s,
        "peak_rss_bytes": capture.peak_rss_bytes,
        "traceback": capture.traceback,
        "stages": {"columns": list(_STAGE_COLUMNS), "rows": stage_rows},
        "requests": {"columns": list(_REQUEST_COLUMNS), "rows": request_rows},
        "extra": capture.extra,
    }


def capture_from_json(data: dict[str, Any]) -> Capture:
    """Rebuild a capture from its JSON form; raise ValueError or KeyError on a malformed one."""
    if data.get("format") != CAPTURE_FORMAT:
        raise ValueError(f"capture format {data.get('format')!r} is not {CAPTURE_FORMAT}")
    stages = [StageEvent(*row) for row in data["stages"]["rows"]]
    requests = [RequestEvent(*row) for row in data["requests"]["rows"]]
    return Capture(
        pass_name=str(data["pass"]),
        exit_code=int(data["exit_code"]),
        wall_s=float(data["wall_s"]),
        cpu_s=float(data["cpu_s"]),
        peak_rss_bytes=data.get("peak_rss_bytes"),
        traceback=data.get("traceback"),
        stages=stages,
        requests=requests,
        extra=dict(data.get("extra") or {}),
    )


def read_capture(path: Path) -> Capture:
    with path.open(encoding="utf-8") as stream:
        return capture_from_json(json.load(stream))
