"""Hand-built `Run` records for the report tests.

`make_run` describes a plausible scoring service: four marked stages plus
`other`, one auto-classified stage, hotspots in user and library code, two
findings, line timings of three functions (and two that line_profiler could not
measure), and a memory profile. `make_hostile_run` fills every free-text field
with markup, quotes, control characters and non-ASCII text, as a profiled
program might.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from aitax.model.run import (
    AllocationSite,
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

HOSTILE = "</script><img src=x onerror=alert(1)>\"'&\x00\x07\x1b[31m \u202egnp.exe ünïcödé 推理 🚀"
SCRIPT_CLOSE = "</script>"
INJECTED_IMG = "<img src=x"

WALL_S = 12.0
REQUESTS = 400
MIB = 1024 * 1024


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
        estimated_saving_ms=9.6 * REQUESTS,
        saving_basis="5 of 6 reads removed at the measured 1.9 ms per read",
        fix="Fetch each key once per request and reuse the result, or cache it per request.",
        code_sketch=(
            "features = fetch_user_features(user_id)\n"
            "for model in models:\n"
            "    model.predict(features)"
        ),
        locations=["pipeline/features.py:45"],
        saving_per_request_ms=9.6,
        saving_share=9.6 * REQUESTS / 1000 / WALL_S,
    )
    row_apply = Finding(
        rule="row-wise-apply",
        category="cpu",
        stage="feature_compute",
        severity="medium",
        title="DataFrame.apply runs Python once per row",
        evidence="DataFrame.apply takes 31% of feature_compute self time.",
        estimated_saving_ms=3.1 * REQUESTS,
        saving_basis="vectorised column arithmetic is typically 10x faster",
        fix="Replace the row-wise apply with column arithmetic.",
        code_sketch='frame["ratio"] = frame["clicks"] / frame["views"].clip(lower=1)',
        locations=["pipeline/features.py:88"],
        saving_per_request_ms=3.1,
        saving_share=3.1 * REQUESTS / 1000 / WALL_S,
    )
    return [repeated_fetch, row_apply]


def _timings(rows: list[tuple[int, int, float, str]]) -> list[LineTiming]:
    """Build line timings from (line number, hits, seconds, source) rows."""
    total = sum(seconds for _, _, seconds, _ in rows)
    return [
        LineTiming(
            lineno=lineno,
            hits=hits,
            time_s=seconds,
            per_hit_us=seconds / hits * 1e6 if hits else None,
            share=seconds / total,
            source=source,
        )
        for lineno, hits, seconds, source in rows
    ]


def _line_profile(
    function: str, file: str, line: int, stage: str, rows: list[tuple[int, int, float, str]]
) -> LineProfile:
    timings = _timings(rows)
    total = sum(timing.time_s for timing in timings)
    return LineProfile(function, file, line, stage, profiled=True, total_s=total, lines=timings)


def make_line_profiles() -> list[LineProfile]:
    """Line timings of three functions, and two functions that line_profiler could not measure.

    The hottest line of `fetch_user_features` is line 45, the location of the
    repeated-fetch finding.
    """
    fetch = _line_profile(
        "fetch_user_features",
        "pipeline/features.py",
        41,
        "feature_fetch",
        [
            (42, 400, 0.004, "    features = {}"),
            (43, 2800, 0.011, "    for model in MODELS:"),
            (44, 2400, 0.052, '        key = f"user:{user_id}:{model.name}"'),
            (45, 2400, 3.180, "        row = store.get(key)"),
            (46, 2400, 0.006, "        if row is None:"),
            (48, 2400, 0.610, "        features[model.name] = decode(row)"),
            (50, 400, 0.001, "    return features"),
        ],
    )
    ratios = _line_profile(
        "compute_ratios",
        "pipeline/features.py",
        88,
        "feature_compute",
        [
            (89, 400, 0.350, "    frame = pd.DataFrame(rows)"),
            (90, 400, 1.550, '    frame["ratio"] = frame.apply(ratio_of_row, axis=1)'),
            (91, 400, 0.210, '    frame["recency"] = now - frame["last_seen"]'),
            (92, 400, 0.090, "    return frame.to_numpy(dtype=np.float32)"),
        ],
    )
    audit = _line_profile(
        "write_audit_log",
        "pipeline/audit.py",
        17,
        "logging",
        [
            (18, 400, 0.050, '    record = {"user": user_id, "scores": scores.tolist()}'),
            (19, 400, 0.010, "    AUDIT_BUFFER.append(record)"),
            (20, 400, 0.540, '    logger.info("scored %s: %s", user_id, json.dumps(record))'),
        ],
    )
    never_called = LineProfile(
        "score_async",
        "pipeline/serve.py",
        120,
        "inference",
        profiled=False,
        reason="line_profiler recorded no hits (never called in this pass, or asynchronous "
        "code that line_profiler does not trace)",
    )
    not_found = LineProfile(
        "Model.predict",
        "pipeline/model.py",
        33,
        "inference",
        profiled=False,
        reason="its definition was not found in the source",
    )
    return [fetch, ratios, audit, never_called, not_found]


def _site(
    function: str,
    file: str,
    line: int,
    stage: str,
    mib: float,
    allocations: int,
    library_call: str | None = None,
) -> AllocationSite:
    allocated = int(mib * MIB)
    return AllocationSite(
        function=function,
        file=file,
        line=line,
        stage=stage,
        allocated_bytes=allocated,
        allocations=allocations,
        library_call=library_call,
        per_request_bytes=allocated / REQUESTS,
    )


def make_memory() -> MemoryProfile:
    """A memory profile whose peak RSS is twice memray's peak, with one leak suspect."""
    by_stage = [
        StageMemory("feature_compute", 6200 * MIB, 2_910_400, 398 * MIB),
        StageMemory("feature_fetch", 1240 * MIB, 1_204_800, 305 * MIB),
        StageMemory("inference", 910 * MIB, 488_000, 412 * MIB),
        StageMemory("logging", 182 * MIB, 96_400, 301 * MIB),
        StageMemory("unmarked", 96 * MIB, 41_200, 126 * MIB),
    ]
    top = [
        _site("compute_ratios", "pipeline/features.py", 90, "feature_compute", 3900, 1_600_000),
        _site("compute_ratios", "pipeline/features.py", 89, "feature_compute", 1400, 800_000),
        _site(
            "compute_ratios", "pipeline/features.py", 92, "feature_compute", 720, 400, "to_numpy"
        ),
        _site("fetch_user_features", "pipeline/features.py", 48, "feature_fetch", 980, 960_000),
        _site("predict", "pipeline/model.py", 40, "inference", 610, 244_000, "astype"),
        _site("predict", "pipeline/model.py", 38, "inference", 300, 244_000, "copy"),
        _site("write_audit_log", "pipeline/audit.py", 18, "logging", 150, 80_000),
        _site("load_models", "pipeline/model.py", 12, "unmarked", 96, 41_200),
    ]
    peak = [
        dataclasses.replace(top[0], stage="", allocated_bytes=180 * MIB, per_request_bytes=None),
        dataclasses.replace(top[4], stage="", allocated_bytes=120 * MIB, per_request_bytes=None),
        dataclasses.replace(top[7], stage="", allocated_bytes=96 * MIB, per_request_bytes=None),
    ]
    leak = LeakSuspect(
        function="write_audit_log",
        file="pipeline/audit.py",
        line=19,
        held_bytes=int(3.1 * MIB),
        growth_per_request_bytes=3.1 * MIB / REQUESTS,
    )
    return MemoryProfile(
        peak_bytes=412 * MIB,
        rss_peak_bytes=845 * MIB,
        native_traces=False,
        total_allocated_bytes=sum(stage.allocated_bytes for stage in by_stage),
        total_allocations=sum(stage.allocations for stage in by_stage),
        peak_locations=peak,
        by_stage=by_stage,
        top_allocations=top,
        leak_suspects=[leak],
        allocations_per_request=11_840.5,
        bytes_per_request=21.2 * MIB,
        heap_growth_per_request_bytes=8150.0,
        notes=[
            "Peak RSS (845.0 MiB) and the peak of allocations that memray tracked (412.0 MiB) "
            "differ by 51%. RSS also counts the interpreter, the code of loaded libraries and "
            "freed pages that the allocator has not returned to the operating system."
        ],
    )


def make_passes() -> list[PassResult]:
    return [
        PassResult(name="clean", status="ok", wall_s=12.0, exit_code=0),
        PassResult(name="cpu", status="ok", wall_s=13.1, exit_code=0, sample_count=12_840),
        PassResult(name="line", status="ok", wall_s=19.4, exit_code=0),
        PassResult(name="memory", status="ok", wall_s=31.7, exit_code=0),
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
        requests=make_requests(REQUESTS),
        stages=make_stages(),
        hotspots=make_hotspots(),
        findings=make_findings(),
        passes=make_passes(),
        cost=Cost(
            instance_cost_per_hour=0.34,
            per_1000_predictions=0.0028,
            basis="$0.34 per instance hour / 33.3 predictions per second, "
            "with one process serving requests back to back",
        ),
        environment=make_environment(),
        lines=make_line_profiles(),
        memory=make_memory(),
        notes=["The CPU pass ran 9% slower than the clean pass; its times are scaled to match."],
        artifacts={
            "CPU profile (pyinstrument)": "cpu/profile.html",
            "Stage events": "timing/stages.jsonl",
        },
    )
    return dataclasses.replace(run, **overrides)


def hostile_path(file: str) -> str:
    """Return the path that the hostile run uses for `file`."""
    return f"/srv/{HOSTILE}/{file}"


def _hostile_site(site: AllocationSite) -> AllocationSite:
    return dataclasses.replace(
        site,
        function=f"{site.function}{HOSTILE}",
        file=hostile_path(site.file),
        stage=f"stage{HOSTILE}" if site.stage else "",
        library_call=HOSTILE,
    )


def _hostile_lines(profiles: list[LineProfile]) -> list[LineProfile]:
    hostile: list[LineProfile] = []
    for profile in profiles:
        lines = [
            dataclasses.replace(timing, source=f"{timing.source}  # {HOSTILE}")
            for timing in profile.lines
        ]
        hostile.append(
            dataclasses.replace(
                profile,
                function=f"{profile.function}{HOSTILE}",
                file=hostile_path(profile.file),
                stage=f"stage{HOSTILE}",
                reason=HOSTILE if not profile.profiled else None,
                lines=lines,
            )
        )
    return hostile


def _hostile_memory(memory: MemoryProfile) -> MemoryProfile:
    return dataclasses.replace(
        memory,
        by_stage=[
            dataclasses.replace(stage, name=f"{stage.name}{HOSTILE}") for stage in memory.by_stage
        ],
        top_allocations=[_hostile_site(site) for site in memory.top_allocations],
        peak_locations=[_hostile_site(site) for site in memory.peak_locations],
        leak_suspects=[
            dataclasses.replace(
                suspect,
                function=f"{suspect.function}{HOSTILE}",
                file=hostile_path(suspect.file),
            )
            for suspect in memory.leak_suspects
        ],
        notes=[HOSTILE],
    )


def make_hostile_run() -> Run:
    """Build a run whose every free-text field contains markup, quotes and control characters.

    Finding locations point into the hostile line profiles, so the page links
    hostile text to heatmap anchors.
    """
    run = make_run()
    name = f"stage{HOSTILE}"

    stages = [dataclasses.replace(stage, name=f"{stage.name}{HOSTILE}") for stage in run.stages]
    stages.append(dataclasses.replace(run.stages[0], name=f"${name}$ \\frac{{"))
    hotspots = [
        dataclasses.replace(
            hotspot,
            function=f"{hotspot.function}{HOSTILE}",
            file=hostile_path(hotspot.file),
            stage=name,
        )
        for hotspot in run.hotspots
    ]
    findings = [
        dataclasses.replace(
            finding,
            title=finding.title + HOSTILE,
            evidence=HOSTILE,
            stage=name,
            saving_basis=HOSTILE,
            fix=HOSTILE,
            code_sketch=f"print('{HOSTILE}')",
            locations=[HOSTILE, *(hostile_path(location) for location in finding.locations)],
            category=HOSTILE,
        )
        for finding in run.findings
    ]
    environment = dataclasses.replace(
        run.environment,
        command=["aitax", "run", HOSTILE],
        cpu_model=HOSTILE,
        packages={HOSTILE: HOSTILE},
        git_commit=HOSTILE,
        platform=HOSTILE,
    )
    passes = [dataclasses.replace(result, error=HOSTILE) for result in run.passes]
    assert run.memory is not None

    return dataclasses.replace(
        run,
        target=HOSTILE,
        argv=[HOSTILE, '--flag="quoted"'],
        stages=stages,
        hotspots=hotspots,
        findings=findings,
        passes=passes,
        environment=environment,
        lines=_hostile_lines(run.lines),
        memory=_hostile_memory(run.memory),
        partial=True,
        stop_reason=HOSTILE,
        exit_code=3,
        traceback=(
            f'Traceback (most recent call last):\n  File "{HOSTILE}"\nValueError: {HOSTILE}'
        ),
        notes=[HOSTILE],
        artifacts={
            HOSTILE: f"cpu/{HOSTILE}.html",
            "script link": "javascript:alert(1)",
            "absolute": "https://example.invalid/x",
            "parent": "../../etc/passwd",
        },
    )
