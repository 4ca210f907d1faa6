"""Records of one `aitax run`, and their `run.json` form.

Every record is a plain dataclass whose fields map one to one onto `run.json`
keys, so the report can be re-rendered from `run.json` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

Severity = Literal["high", "medium", "low"]
StageSource = Literal["marked", "auto"]
PassStatus = Literal["ok", "failed", "skipped"]


@dataclass
class RequestStats:
    """Latency and throughput of the marked requests, from the clean timing pass."""

    count: int
    items: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    throughput_rps: float | None
    throughput_items_per_s: float | None
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class StageStats:
    """Time spent in one stage.

    `total_s` is exclusive wall time: time in a nested stage counts for the
    nested stage only. `share` is `total_s` over the run's wall time. Auto
    stages come from CPU-pass samples scaled to the clean pass, so they have no
    CPU time and no percentiles.
    """

    name: str
    total_s: float
    share: float
    cpu_s: float | None
    count: int | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    source: StageSource
    durations_ms: list[float] = field(default_factory=list)


@dataclass
class Hotspot:
    """A function ranked by self time in the CPU pass."""

    rank: int
    function: str
    file: str
    line: int
    stage: str
    self_s: float
    total_s: float
    share: float
    user_code: bool


@dataclass
class Finding:
    """A diagnosed problem with its evidence, estimated saving and fix.

    `estimated_saving_ms` is the wall time the fix would save over the whole
    clean run. `saving_per_request_ms` is the same saving spread over the marked
    requests, or None when none were marked. `saving_share` is the saving as a
    share of the run's wall time.
    """

    rule: str
    category: str
    stage: str
    severity: Severity
    title: str
    evidence: str
    estimated_saving_ms: float
    saving_basis: str
    fix: str
    code_sketch: str = ""
    locations: list[str] = field(default_factory=list)
    saving_per_request_ms: float | None = None
    saving_share: float = 0.0


@dataclass
class LineTiming:
    """One source line of a line-profiled function."""

    lineno: int
    hits: int
    time_s: float
    per_hit_us: float | None
    share: float
    source: str


@dataclass
class LineProfile:
    """Line timings of one function from the line pass.

    `profiled` is False when line_profiler could not measure the function. Then
    `reason` gives the cause, and the empty `lines` is not a measurement of zero.
    """

    function: str
    file: str
    line: int
    stage: str
    profiled: bool
    total_s: float = 0.0
    reason: str | None = None
    lines: list[LineTiming] = field(default_factory=list)


@dataclass
class StageMemory:
    """Memory allocated while a stage was the innermost open stage."""

    name: str
    allocated_bytes: int
    allocations: int
    peak_bytes: int


@dataclass
class AllocationSite:
    """A line of code and what it allocated over the memory pass."""

    function: str
    file: str
    line: int
    stage: str
    allocated_bytes: int
    allocations: int
    library_call: str | None = None
    per_request_bytes: float | None = None


@dataclass
class LeakSuspect:
    """Memory still held at the end whose amount grew with the number of requests."""

    function: str
    file: str
    line: int
    held_bytes: int
    growth_per_request_bytes: float


@dataclass
class MemoryProfile:
    """Memory measurements of the memory pass, taken with memray.

    `peak_bytes` is the peak of memory that memray saw allocated. `rss_peak_bytes`
    is the peak resident set size of the clean pass, or of the memory pass when
    the clean pass did not run. RSS also counts the interpreter, loaded libraries
    and freed pages not yet returned to the system.
    """

    peak_bytes: int
    rss_peak_bytes: int | None
    native_traces: bool
    total_allocated_bytes: int
    total_allocations: int
    peak_locations: list[AllocationSite] = field(default_factory=list)
    by_stage: list[StageMemory] = field(default_factory=list)
    top_allocations: list[AllocationSite] = field(default_factory=list)
    leak_suspects: list[LeakSuspect] = field(default_factory=list)
    allocations_per_request: float | None = None
    bytes_per_request: float | None = None
    heap_growth_per_request_bytes: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PassResult:
    """The outcome of one pass."""

    name: str
    status: PassStatus
    wall_s: float | None = None
    exit_code: int | None = None
    error: str | None = None
    sample_count: int | None = None


@dataclass
class Environment:
    """The machine and software of the run, without environment variables or secrets."""

    python: str
    platform: str
    cpu_model: str
    cpu_count: int
    packages: dict[str, str]
    command: list[str]
    git_commit: str | None
    aitax_version: str


@dataclass
class ChildProcess:
    """A process that the target started, directly or through another child.

    `command` is its command line, shortened and with secret-looking arguments
    redacted. `cpu_s` is its own CPU time when last seen, without its children.
    Seen times are seconds since the pass started watching.
    """

    pid: int
    kind: str
    executable: str
    command: str
    cpu_s: float
    first_seen_s: float
    last_seen_s: float
    alive_at_end: bool


@dataclass
class ChildProcesses:
    """CPU time of the processes the target started, which aitax does not profile.

    The numbers come from the pass named in `pass_name`. `cpu_s` counts every
    descendant once: polled CPU times plus the kernel's totals for the children
    that were waited for. `share` is `cpu_s` over the CPU time of the pass's own
    process plus `cpu_s`. `unattributed_cpu_s` is the part of `cpu_s` that no
    polled process accounts for: children that ended before a poll saw them, and
    the time seen processes used after their last poll. `processes` lists the
    top processes by CPU time, and `omitted_count` and `omitted_cpu_s` sum up
    the rest. `watch_error` is set when the process watch failed part way.
    """

    pass_name: str
    cpu_s: float
    share: float
    count: int
    alive_at_end: int
    by_kind: dict[str, int] = field(default_factory=dict)
    cpu_by_kind: dict[str, float] = field(default_factory=dict)
    processes: list[ChildProcess] = field(default_factory=list)
    omitted_count: int = 0
    omitted_cpu_s: float = 0.0
    unattributed_cpu_s: float = 0.0
    watch_error: str | None = None
    # How to bring the children's work into the profile, for the kinds seen.
    advice: str = ""

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> ChildProcesses:
        """Rebuild the record from its `run.json` form."""
        fields = dict(data)
        fields["processes"] = [ChildProcess(**item) for item in data.get("processes", [])]
        return cls(**fields)


@dataclass
class Cost:
    """Cost per 1000 predictions at a given instance price, in US dollars."""

    instance_cost_per_hour: float
    per_1000_predictions: float | None
    basis: str


@dataclass
class Run:
    """Everything one `aitax run` measured and concluded."""

    target: str
    argv: list[str]
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int | None
    started_at: str
    requests: RequestStats
    stages: list[StageStats]
    hotspots: list[Hotspot]
    findings: list[Finding]
    passes: list[PassResult]
    cost: Cost
    environment: Environment
    lines: list[LineProfile] = field(default_factory=list)
    memory: MemoryProfile | None = None
    partial: bool = False
    stop_reason: str | None = None
    traceback: str | None = None
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    child_processes: ChildProcesses | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)
