"""Time a service script's stages by hand, as a reference for what aitax reports.

Runs the script in this process with runpy, as __main__, after replacing
`aitax.stage` with a timer that puts time.perf_counter() around each stage and
`aitax.request` with a no-op. Each stage name gets its exclusive wall time:
time spent in a nested stage counts for the nested stage only. Wall time runs
from just before runpy starts the script to just after it returns, so it
includes the script's imports and setup. Prints the result as JSON.

Example: python examples/scoring/hand_timed.py --json-out hand.json -- --requests 200
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aitax

DEFAULT_SCRIPT = Path(__file__).resolve().parent / "service.py"


class StageTimer:
    """Sums exclusive wall time in seconds per stage name.

    NOTE: One stack of open stages serves the whole process, so stages opened by
    several threads at once would be charged to each other.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.totals_s: dict[str, float] = {}
        self._open_child_s: list[float] = []

    @contextmanager
    def stage(self, name: str, key: Hashable | None = None) -> Iterator[None]:
        """Time one stage; `key` is accepted for aitax.stage's signature and ignored."""
        self._open_child_s.append(0.0)
        start = self.clock()
        try:
            yield
        finally:
            elapsed = self.clock() - start
            child_s = self._open_child_s.pop()
            self.totals_s[name] = self.totals_s.get(name, 0.0) + elapsed - child_s
            if self._open_child_s:
                self._open_child_s[-1] += elapsed


@contextmanager
def untimed_request(size: int = 1) -> Iterator[None]:
    yield


def run_script(script: Path, script_args: list[str], timer: StageTimer) -> tuple[float, Any]:
    """Run `script` as __main__ with the timer in place of the markers.

    Returns the wall time in seconds and the script's exit code (None when it
    returns without calling sys.exit). The markers, sys.argv and sys.path[0]
    are restored afterwards.
    """
    saved_markers = (aitax.stage, aitax.request)
    saved_argv, saved_path0 = sys.argv, sys.path[0]
    aitax.stage = timer.stage  # type: ignore[assignment]
    aitax.request = untimed_request  # type: ignore[assignment]
    # The same argv and sys.path[0] that `python script args...` would set.
    sys.argv = [str(script), *script_args]
    sys.path[0] = str(script.parent)

    exit_code: Any = None
    started = time.perf_counter()
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_request:
        exit_code = exit_request.code
    finally:
        wall_s = time.perf_counter() - started
        aitax.stage, aitax.request = saved_markers
        sys.argv = saved_argv
        sys.path[0] = saved_path0
    return wall_s, exit_code


def summarize(script: Path, wall_s: float, totals_s: dict[str, float]) -> dict[str, Any]:
    stages = {
        name: {"total_s": round(total_s, 6), "share": round(total_s / wall_s, 4)}
        for name, total_s in totals_s.items()
    }
    return {"script": str(script), "wall_s": round(wall_s, 6), "stages": stages}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments this script does not define are passed to the service script; "
        "put them after -- to be sure.",
    )
    parser.add_argument(
        "--script",
        type=Path,
        default=DEFAULT_SCRIPT,
        help="service script to run (default examples/scoring/service.py)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON result to this file")
    args, script_args = parser.parse_known_args(argv)
    if script_args[:1] == ["--"]:
        script_args = script_args[1:]
    if not args.script.is_file():
        parser.error(f"--script {args.script} not found; pass the path of a service script")
    return args, script_args


def main(argv: list[str] | None = None) -> int:
    args, script_args = parse_args(argv)
    timer = StageTimer()

    wall_s, exit_code = run_script(args.script.resolve(), script_args, timer)
    if exit_code not in (None, 0):
        message = f"error: {args.script} exited with status {exit_code}; no timings written"
        print(message, file=sys.stderr)
        return exit_code if isinstance(exit_code, int) else 1

    result = json.dumps(summarize(args.script, wall_s, timer.totals_s), indent=2)
    if args.json_out is not None:
        args.json_out.write_text(result + "\n", encoding="utf-8")
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
