"""Hand-built `Run` records for the report tests.

`make_run` describes a plausible scoring service: four marked stages plus
`other`, one auto-classified stage, hotspots in user and library code, and two
findings. `make_hostile_run` fills every free-text field with markup, quotes,
control characters and non-ASCII text, as a profiled program might.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from aitax.model.run import (
    Cost,
    Environment,
    Finding,
    Hotspot,
    PassResult,
    RequestStats,
    Run,
    StageStats,
)

HOSTILE = "</script><img src=x onerror=alert(1)>\"'&\x00\x07\x1b[31m ünïcödé 推理 🚀"
SCRIPT_CLOSE = "</script>"
INJECTED_IMG = "<img src=x"

WALL_S = 12.0


def _samples(seed: int, count: int, median_ms: float, spread: float) -> list[float]:
    generator = random.Random(seed)
    return [round(generator.lognormvariate(0, spread) * median_ms, 3) for _ in range(count)]


def make_requests(count: int = 400) -> RequestStats:
    latencies = _samples(seed=1, count=count, median_ms=27.0, spread=0.35)
    return RequestStats(
        count=count,
        items=count * 8,
        p50_ms=27.1,
        p95_ms=48.9,
        p99_ms=63.4,
        mean_ms=28.9,
        max_ms=max(latencies),
        throughput_rps=33.3,
        throughput_items_per_s=266.7,
        latencies_ms=latencies,
    )


def _stage(
    name: str,
    total_s: float,
    cpu_s: float | None,
    median_ms: float,
    seed: int,
) -> StageStats:
    durations = _samples(seed=seed, count=400, median_ms=median_ms, spread=0.4)
    return StageStats(
        name=name,
        total_s=total_s,
        share=total_s / WALL_S,
        cpu_s=cpu_s,
        count=len(durations),
        p50_ms=median_ms,
        p95_ms=round(median_ms * 1.9, 2),
        p99_ms=round(median_ms * 2.5, 2),
        source="marked",
        durations_ms=durations,
    )


def make_stages() -> list[StageStats]:
    auto = StageStats(
        name="json_decode",
        total_s=0.6,
        share=0.6 / WALL_S,
        cpu_s=None,
        count=None,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        source="auto",
    )
    other = StageStats(
        name="other",
        total_s=0.4,
        share=0.4 / WALL_S,
        cpu_s=0.35,
        count=None,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        source="auto",
    )
    return [
        _stage("feature_fetch", total_s=4.8, cpu_s=0.4, median_ms=11.5, seed=2),
        _stage("feature_compute", total_s=2.9, cpu_s=2.8, median_ms=7.1, seed=3),
        _stage("inference", total_s=2.6, cpu_s=2.5, median_ms=6.4, seed=4),
        _stage("logging", total_s=0.7, cpu_s=0.2, median_ms=1.6, seed=5),
        auto,
        other,
    ]


def make_hotspots() -> list[Hotspot]:
    rows = [
        ("fetch_user_features", "pipeline/features.py", 41, "feature_fetch", 3.9, 4.6, True),
        ("predict_proba", "sklearn/ensemble/_forest.py", 862, "inference", 1.7, 2.4, False),
        ("compute_ratios", "pipeline/features.py", 88, "feature_compute", 1.5, 2.7, True),
        ("DataFrame.apply", "pandas/core/frame.py", 10374, "feature_compute", 0.9, 2.1, False),
        ("loads", "json/__init__.py", 346, "json_decode", 0.55, 0.6, False),
        ("write_audit_log", "pipeline/audit.py", 17, "logging", 0.5, 0.7, True),
    ]
    return [
        Hotspot(
            rank=index + 1,
            function=function,
            file=file,
            line=line,
            stage=stage,
            self_s=self_s,
            total_s=total_s,
            share=self_s / WALL_S,
            user_code=user_code,
        )
        for index, (function, file, line, stage, self_s, total_s, user_code) in enumerate(rows)
    ]


def make_findings() -> list[Finding]:
    repeated_fetch = Finding(
        rule="repeated-fetch",
        category="io",
        stage="feature_fetch",
        severity="high",
        title="Each request fetches the same user features 6 times",
        evidence="2,400 reads of 400 distinct keys; 83% of feature_fetch time repeats a read.",
        estimated_saving_ms=9.6,
        saving_basis="per request: 5 of 6 reads removed at the measured 1.9 ms per read",
        fix="Fetch each key once per request and reuse the result, or cache it per request.",
        code_sketch=(
            "features = fetch_user_features(user_id)\n"
            "for model in models:\n"
            "    model.predict(features)"
        ),
        locations=["pipeline/features.py:41"],
    )
    row_apply = Finding(
        rule="row-wise-apply",
        category="cpu",
        stage="feature_compute",
        severity="medium",
        title="DataFrame.apply runs Python once per row",
        evidence="DataFrame.apply takes 31% of feature_compute self time.",
        estimated_saving_ms=3.1,
        saving_basis="per request: vectorised column arithmetic is typically 10x faster",
        fix="Replace the row-wise apply with column arithmetic.",
        code_sketch='frame["ratio"] = frame["clicks"] / frame["views"].clip(lower=1)',
        locations=["pipeline/features.py:88"],
    )
    return [repeated_fetch, row_apply]


def make_passes() -> list[PassResult]:
    return [
        PassResult(name="timing", status="ok", wall_s=12.0, exit_code=0),
        PassResult(name="cpu", status="ok", wall_s=13.1, exit_code=0, sample_count=12_840),
        PassResult(name="memory", status="failed", wall_s=0.8, exit_code=1,
                   error="memray is not available on this platform"),
        PassResult(name="lines", status="skipped"),
    ]


def make_environment() -> Environment:
    return Environment(
        python="3.11.7 (CPython)",
        platform="Linux-6.1.0-x86_64-with-glibc2.36",
        cpu_model="Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        cpu_count=8,
        packages={"numpy": "2.1.3", "pandas": "2.2.3", "scikit-learn": "1.5.2"},
        command=["aitax", "run", "--requests", "400", "serve_batch.py", "--batch", "8"],
        git_commit="3f9c2e1a7b",
        aitax_version="0.1.0",
    )


def make_run(**overrides: Any) -> Run:
    """Build a realistic run; keyword arguments replace fields of the `Run`."""
    run = Run(
        target="serve_batch.py",
        argv=["serve_batch.py", "--batch", "8"],
        exit_code=0,
        wall_s=WALL_S,
        cpu_s=6.9,
        peak_rss_bytes=812 * 1024 * 1024,
        started_at="2024-05-14T09:31:07+00:00",
        requests=make_requests(),
        stages=make_stages(),
        hotspots=make_hotspots(),
        findings=make_findings(),
        passes=make_passes(),
        cost=Cost(instance_cost_per_hour=0.34, per_1000_predictions=0.0028,
                  basis="at 0.34 per instance-hour and 33.3 requests per second"),
        environment=make_environment(),
        notes=["The memory pass failed, so peak RSS comes from the timing pass."],
        artifacts={"CPU profile (pyinstrument)": "cpu/profile.html",
                   "Stage events": "timing/stages.jsonl"},
    )
    return dataclasses.replace(run, **overrides)


def make_hostile_run() -> Run:
    """Build a run whose every free-text field contains markup, quotes and control characters."""
    run = make_run()
    name = f"stage{HOSTILE}"

    stages = [dataclasses.replace(stage, name=f"{stage.name}{HOSTILE}") for stage in run.stages]
    stages.append(dataclasses.replace(run.stages[0], name=f"${name}$ \\frac{{"))
    hotspots = [
        dataclasses.replace(hotspot, function=f"{hotspot.function}{HOSTILE}",
                            file=f"/srv/{HOSTILE}/{hotspot.file}", stage=name)
        for hotspot in run.hotspots
    ]
    findings = [
        dataclasses.replace(finding, title=finding.title + HOSTILE, evidence=HOSTILE,
                            stage=name, saving_basis=HOSTILE, fix=HOSTILE,
                            code_sketch=f"print('{HOSTILE}')", locations=[HOSTILE],
                            category=HOSTILE)
        for finding in run.findings
    ]
    environment = dataclasses.replace(
        run.environment, command=["aitax", "run", HOSTILE], cpu_model=HOSTILE,
        packages={HOSTILE: HOSTILE}, git_commit=HOSTILE, platform=HOSTILE,
    )
    passes = [dataclasses.replace(result, error=HOSTILE) for result in run.passes]

    return dataclasses.replace(
        run,
        target=HOSTILE,
        argv=[HOSTILE, "--flag=\"quoted\""],
        stages=stages,
        hotspots=hotspots,
        findings=findings,
        passes=passes,
        environment=environment,
        exit_code=3,
        traceback=(
            f"Traceback (most recent call last):\n  File \"{HOSTILE}\"\nValueError: {HOSTILE}"
        ),
        notes=[HOSTILE],
        artifacts={HOSTILE: f"cpu/{HOSTILE}.html", "script link": "javascript:alert(1)",
                   "absolute": "https://example.invalid/x", "parent": "../../etc/passwd"},
    )
