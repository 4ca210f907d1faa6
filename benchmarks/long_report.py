"""Render the report of a long synthetic run and time how fast headless Chromium loads it.

Usage: .venv/bin/python benchmarks/long_report.py [--samples N] [--functions N] [--loads N]

The run is built from a synthetic CPU session (N samples over N functions, 30
frames deep) through the same analysis as `aitax run`, so the page has full
hotspot, stage and finding tables. Chromium loads the page `--loads` times. The
script prints the page size and the median time from navigation start to the
load event, as the browser's Navigation Timing reports it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aitax.analysis.build import CpuProfile, RunInputs, build_run  # noqa: E402
from aitax.capture.capture_file import Capture  # noqa: E402
from aitax.config import Config  # noqa: E402
from aitax.environment import collect_environment  # noqa: E402
from aitax.markers import STANDARD_STAGES, RequestEvent, StageEvent  # noqa: E402
from aitax.report.html import write_html  # noqa: E402
from browser_helpers import open_page  # noqa: E402

# Seeded so that two runs of the benchmark render the same page.
SEED = 20261204
DEPTH = 30


def synthetic_profile(samples: int, functions: int, generator: random.Random) -> CpuProfile:
    names = [
        f"step_{index}\x00/srv/app/pipeline_{index % 50}.py\x00{index + 1}"
        for index in range(functions)
    ]
    records = []
    for _ in range(samples):
        stack = ["MainThread\x00<thread>\x001", "<module>\x00/srv/app/main.py\x001"]
        stack += generator.sample(names, DEPTH)
        records.append((stack, 0.001))
    labels = [generator.choice(STANDARD_STAGES) for _ in range(samples)]
    return CpuProfile(records, labels, ["/srv/app"], ["/usr"], samples / 1000)


def synthetic_timing(requests: int) -> Capture:
    stages = []
    request_events = []
    for index in range(requests):
        start = index * 10_000_000
        request_events.append(RequestEvent(index + 1, 1, start, start + 9_000_000, 1))
        for offset, name in enumerate(STANDARD_STAGES):
            begin = start + offset * 2_000_000
            stages.append(StageEvent(name, begin, begin + 2_000_000, 1_500_000, 0, 0, 1, index + 1))
    return Capture(
        "clean", 0, requests / 100, requests / 120, 200 * 2**20, None, stages, request_events
    )


def build_page(samples: int, functions: int, folder: Path) -> Path:
    generator = random.Random(SEED)
    inputs = RunInputs(
        target="long_run.py",
        argv=["python", "long_run.py"],
        started_at=datetime.now(UTC),
        passes=[],
        clean=synthetic_timing(samples // 10),
        cpu_capture=None,
        cpu=synthetic_profile(samples, functions, generator),
        config=Config(),
        instance_cost_per_hour=0.0832,
        environment=collect_environment(["aitax", "run", "long_run.py"], folder),
        artifacts={},
    )
    started = time.perf_counter()
    run = build_run(inputs)
    page = folder / "report.html"
    write_html(run, page)
    print(f"analysis and rendering: {time.perf_counter() - started:.2f} s")
    return page


def load_times(page: Path, loads: int) -> list[float]:
    times = []
    for _ in range(loads):
        with open_page(1280, 900) as (browser_page, events):
            browser_page.goto(page.as_uri(), wait_until="load")
            timing = browser_page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0];"
                " return t.loadEventEnd - t.startTime; }"
            )
            if events.console_errors or events.external_requests:
                raise SystemExit(f"the page reported problems: {events}")
            times.append(float(timing))
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--functions", type=int, default=20_000)
    parser.add_argument("--loads", type=int, default=5)
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        page = build_page(options.samples, options.functions, Path(folder))
        times = load_times(page, options.loads)
        size = page.stat().st_size
    print(f"samples: {options.samples:,}, functions: {options.functions:,}")
    print(f"report.html: {size / 1024:,.0f} KiB")
    print(
        f"Chromium load, median of {options.loads}: {statistics.median(times):.0f} ms "
        f"(min {min(times):.0f}, max {max(times):.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
