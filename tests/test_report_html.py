"""The HTML report: one self-contained, escaped page with the run's content in order."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import uuid
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitax.analysis.rules.base import HIGH_SAVING_SHARE, MEDIUM_SAVING_SHARE
from aitax.model.run import (
    Finding,
    Hotspot,
    LineProfile,
    LineTiming,
    PassResult,
    RequestStats,
    Severity,
    StageStats,
)
from aitax.report import _heatmap, _memory, charts, html
from aitax.report._format import format_cost, format_share
from aitax.report.html import MAX_HOTSPOT_ROWS, render_html, write_html
from report_fixtures import (
    HOSTILE,
    INJECTED_IMG,
    SCRIPT_CLOSE,
    make_findings,
    make_hostile_run,
    make_hotspots,
    make_line_profiles,
    make_memory,
    make_run,
)


class _PageParser(HTMLParser):
    """Collect attributes, script bodies, sortable tables and the cells of rows with an id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[str, str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.rows: dict[str, list[str]] = {}
        self.row_classes: dict[str, set[str]] = {}
        self._script: dict[str, str | None] | None = None
        self._script_text: list[str] = []
        self._table: str | None = None
        self._row: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value))
        attributes = dict(attrs)
        if tag == "script":
            self._script = attributes
            self._script_text = []
        elif tag == "table" and attributes.get("data-sortable"):
            self._table = attributes["data-sortable"] or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None and "data-row" in attributes:
            self.tables[self._table].append([])
        elif tag == "tr" and attributes.get("id"):
            self._row = attributes["id"] or ""
            self.rows[self._row] = []
            self.row_classes[self._row] = set((attributes.get("class") or "").split())
        elif tag == "td" and (self._table is not None or self._row is not None):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._script_text)))
            self._script = None
        elif tag == "table":
            self._table = None
        elif tag == "tr":
            self._row = None
        elif tag == "td" and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if self._table is not None:
                self.tables[self._table][-1].append(text)
            elif self._row is not None:
                self.rows[self._row].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script_text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(page)
    parser.close()
    return parser


def section(page: str, section_id: str) -> str:
    start = page.index(f'<section id="{section_id}"')
    return page[start : page.index("</section>", start)]


@pytest.fixture(scope="module")
def default_page() -> str:
    return render_html(make_run())


@pytest.fixture(scope="module")
def hostile_page() -> str:
    return render_html(make_hostile_run())


def finding(title: str, severity: Severity, saving_ms: float) -> Finding:
    return dataclasses.replace(
        make_findings()[0], title=title, severity=severity, estimated_saving_ms=saving_ms
    )


# Self-contained page


def test_page_is_one_document(default_page: str) -> None:
    page = default_page

    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1
    assert page.count("</html>") == 1
    assert page.count("<body") == 1


def test_page_loads_nothing_from_outside(default_page: str) -> None:
    page = default_page
    parsed = parse(page)

    links = [
        (tag, name, value)
        for tag, name, value in parsed.attributes
        if name in ("src", "href", "xlink:href", "action")
    ]
    external = [link for link in links if link[2] and re.match(r"^[a-z][a-z0-9+.-]*:", link[2])]
    assert external == []
    assert not [link for link in links if link[1] == "src"]
    assert "<link" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert "@import" not in page
    assert re.findall(r"url\((?!#)", page) == []


def test_page_embeds_style_and_script_inline(default_page: str) -> None:
    page = default_page
    parsed = parse(page)

    assert "<style>" in page
    assert [attributes for attributes, _ in parsed.scripts if "src" in attributes] == []
    assert len(parsed.scripts) == 2


def test_content_security_policy_allows_only_our_script(default_page: str) -> None:
    page = default_page
    parsed = parse(page)

    policy = next(
        value
        for tag, name, value in parsed.attributes
        if tag == "meta" and name == "content" and value and "default-src" in value
    )
    executable = [text for attributes, text in parsed.scripts if "type" not in attributes]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert html._csp_hash(executable[0]) in policy


def test_sections_appear_in_order(default_page: str) -> None:
    page = default_page

    order = [
        "verdict",
        "stages",
        "latency",
        "hotspots",
        "lines",
        "memory",
        "findings",
        "passes",
        "environment",
        "artifacts",
        "notes",
    ]
    positions = [page.index(f'<section id="{name}"') for name in order]
    assert positions == sorted(positions)


def test_element_ids_are_unique(default_page: str) -> None:
    parsed = parse(default_page)

    ids = [value for _, name, value in parsed.attributes if name == "id"]
    assert len(ids) == len(set(ids))


# Escaping of data from the profiled program


def test_hostile_strings_are_escaped(hostile_page: str) -> None:
    page = hostile_page

    assert INJECTED_IMG not in page
    assert "<img" not in page
    assert page.count(SCRIPT_CLOSE) == page.count("<script")
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_script_blocks_hold_no_data_markup(hostile_page: str) -> None:
    parsed = parse(hostile_page)

    for _, text in parsed.scripts:
        assert "</script" not in text.lower()
        assert "<!--" not in text
        assert INJECTED_IMG not in text


def test_sort_keys_round_trip_through_json() -> None:
    run = make_hostile_run()
    parsed = parse(render_html(run))

    data_block = next(
        text for attributes, text in parsed.scripts if attributes.get("id") == "aitax-sort-keys"
    )
    keys = json.loads(data_block)
    assert keys["hotspots"][0][1] == run.hotspots[0].function
    assert keys["stages"][0][0] == run.stages[0].name


def test_control_characters_are_shown_as_escapes(hostile_page: str) -> None:
    page = hostile_page

    assert "\x00" not in page
    assert "\x07" not in page
    assert "\x1b" not in page
    assert "\\x1b[31m" in page
    assert "\u202e" not in page
    assert "\\u202egnp.exe" in page


def test_non_ascii_text_is_kept(hostile_page: str) -> None:
    page = hostile_page

    assert "ünïcödé 推理 🚀" in page


def test_unsafe_artifact_paths_are_not_linked(hostile_page: str) -> None:
    parsed = parse(hostile_page)

    hrefs = [value or "" for tag, name, value in parsed.attributes if tag == "a" and name == "href"]
    artifact_hrefs = [href for href in hrefs if not href.startswith("#")]
    assert len(artifact_hrefs) == 1
    assert artifact_hrefs[0].startswith("cpu/%3C/script%3E%3Cimg%20src%3Dx")
    assert artifact_hrefs[0].endswith(".html")


def test_relative_artifacts_are_linked(default_page: str) -> None:
    parsed = parse(default_page)

    hrefs = [value for tag, name, value in parsed.attributes if tag == "a" and name == "href"]
    assert "cpu/profile.html" in hrefs
    assert "timing/stages.jsonl" in hrefs


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(min_size=1, max_size=40))
def test_any_stage_or_function_name_renders(name: str) -> None:
    run = make_run()
    stages = [
        dataclasses.replace(stage, name=name) if stage.name == "inference" else stage
        for stage in run.stages
    ]
    hotspots = [dataclasses.replace(hotspot, function=name, stage=name) for hotspot in run.hotspots]

    page = render_html(dataclasses.replace(run, stages=stages, hotspots=hotspots))

    page.encode("utf-8")
    assert INJECTED_IMG not in page
    assert page.count("</script>") == 2


# Charts


def test_chart_svg_is_inline_ready() -> None:
    run = make_run()
    svg = charts.stage_breakdown_svg(run.stages, charts.stage_colors(run.stages))

    assert svg is not None
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "DOCTYPE" not in svg
    assert "xmlns" not in svg
    assert "<metadata" not in svg
    assert "font-family" not in svg
    assert '<path id="DejaVu' not in svg
    assert "currentColor" in svg


def test_stage_names_in_svg_are_escaped() -> None:
    name = 'a</script><img src=x>"&'
    stage = StageStats(
        name=name,
        total_s=1.0,
        share=0.5,
        cpu_s=None,
        count=None,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        source="marked",
    )

    svg = charts.stage_breakdown_svg([stage], charts.stage_colors([stage]))

    assert svg is not None
    assert "</script>" not in svg
    assert "<img" not in svg
    root = ElementTree.fromstring(svg.replace("<svg", '<svg xmlns:xlink="urn:xlink"', 1))
    texts = [element.text for element in root.iter() if element.tag == "text"]
    assert name in texts


def test_dollar_signs_are_drawn_literally() -> None:
    stage = StageStats(
        name="$x^2$ and $",
        total_s=1.0,
        share=0.5,
        cpu_s=None,
        count=None,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        source="marked",
    )

    svg = charts.stage_breakdown_svg([stage], charts.stage_colors([stage]))

    assert svg is not None
    assert "$x^2$ and $" in svg


def test_charts_are_small() -> None:
    run = make_run()
    colors = charts.stage_colors(run.stages)

    drawn = [
        charts.stage_breakdown_svg(run.stages, colors),
        charts.stage_share_svg(run.stages, colors),
        charts.latency_histogram_svg(run.requests),
        charts.stage_distributions_svg(run.stages, colors),
    ]

    for svg in drawn:
        assert svg is not None
        assert len(svg) < 40_000


def test_histogram_bins_are_capped() -> None:
    samples = [float(value) for value in range(100_000)]
    requests = dataclasses.replace(make_run().requests, latencies_ms=samples)

    svg = charts.latency_histogram_svg(requests)
    counts, edges = charts.histogram_bins(numpy.asarray(samples))

    assert svg is not None
    assert len(counts) <= charts.MAX_HISTOGRAM_BINS
    assert int(counts.sum()) == len(samples)
    assert len(edges) == len(counts) + 1


# Content


def test_auto_stages_are_labelled(default_page: str) -> None:
    page = default_page
    rows = parse(page).tables["stages"]

    sources = {row[0]: row[1] for row in rows}
    assert sources["json_decode"] == "auto"
    assert sources["other"] == "auto"
    assert sources["inference"] == "marked"
    assert "json_decode (auto)" in section(page, "verdict")


def test_stage_other_is_listed(default_page: str) -> None:
    rows = parse(default_page).tables["stages"]

    assert [row[0] for row in rows] == [
        "feature_fetch",
        "feature_compute",
        "inference",
        "logging",
        "json_decode",
        "other",
    ]


def test_stage_table_shows_cpu_beside_wall(default_page: str) -> None:
    rows = parse(default_page).tables["stages"]

    fetch = rows[0]
    assert fetch[2:5] == ["4.80 s", "0.400 s", "40.0%"]
    assert fetch[6:9] == ["11.5 ms", "21.9 ms", "28.8 ms"]


def test_top_three_findings_lead_the_page() -> None:
    findings = [
        finding("Low one", "low", 50.0),
        finding("Medium small", "medium", 1.0),
        finding("High one", "high", 2.0),
        finding("Medium large", "medium", 8.0),
    ]
    page = render_html(make_run(findings=findings))
    verdict = section(page, "verdict")

    assert "High one" in verdict
    assert "Medium large" in verdict
    assert "Medium small" in verdict
    assert "Low one" not in verdict
    assert verdict.index("High one") < verdict.index("Medium large") < verdict.index("Medium small")
    assert "1 more finding" in verdict


def test_findings_show_every_field(default_page: str) -> None:
    findings_html = section(default_page, "findings")

    repeated = make_findings()[0]
    for text in (
        repeated.title,
        repeated.evidence,
        repeated.saving_basis,
        repeated.fix,
        repeated.category,
        repeated.stage,
        "9.60 ms per request",
        "pipeline/features.py:45",
    ):
        assert text in findings_html
    assert '<pre class="sketch"><code>features = fetch_user_features(user_id)' in findings_html


def test_kpis_show_latency_throughput_memory_and_cost(default_page: str) -> None:
    verdict = section(default_page, "verdict")

    for text in (
        "27.1 ms",
        "48.9 ms",
        "63.4 ms",
        "33.3 req/s",
        "267 items/s",
        "812.0 MiB",
        "$0.0028",
        "12.0 s",
    ):
        assert text in verdict


def test_failed_target_shows_traceback_first() -> None:
    run = make_run(exit_code=2, traceback="Traceback (most recent call last):\nKeyError: 'x'")
    verdict = section(render_html(run), "verdict")

    assert "exited with status 2" in verdict
    assert "KeyError: &#39;x&#39;" in verdict
    assert "kpi-bad" in verdict


def test_missing_requests_explain_how_to_mark_them() -> None:
    requests = RequestStats(
        count=0,
        items=0,
        p50_ms=None,
        p95_ms=None,
        p99_ms=None,
        mean_ms=None,
        max_ms=None,
        throughput_rps=None,
        throughput_items_per_s=None,
    )
    page = render_html(make_run(requests=requests))

    assert "with aitax.request():" in section(page, "latency")
    assert "no requests marked" in section(page, "verdict")
    assert 'aria-label="Histogram of request latency"' not in page


def test_hotspots_are_capped() -> None:
    template = make_hotspots()[0]
    hotspots = [
        dataclasses.replace(template, rank=rank, function=f"function_{rank}")
        for rank in range(1, 501)
    ]
    page = render_html(make_run(hotspots=hotspots))

    rows = parse(page).tables["hotspots"]
    assert len(rows) == MAX_HOTSPOT_ROWS
    assert rows[-1][1] == f"function_{MAX_HOTSPOT_ROWS}"
    assert f"Showing the top {MAX_HOTSPOT_ROWS} of 500 hotspots." in page


def test_many_stages_are_capped_in_charts() -> None:
    template = make_run().stages[0]
    stages = [
        dataclasses.replace(template, name=f"stage_{index:02d}", total_s=float(index))
        for index in range(1, 31)
    ]
    page = render_html(make_run(stages=stages))

    verdict = section(page, "verdict")
    latency = section(page, "latency")
    assert f"Showing the {html.MAX_BREAKDOWN_STAGES} longest of 30 stages." in verdict
    assert "stage_30" in verdict
    assert "stage_01" not in verdict
    assert f"Showing the {html.MAX_DISTRIBUTION_STAGES} longest of 30 stages." in latency
    assert len(parse(page).tables["stages"]) == 30


def test_large_run_page_stays_small() -> None:
    run = make_run()
    marker = 123.456789
    latencies = [marker] + [float(index % 997) / 10 for index in range(200_000)]
    stages = [
        dataclasses.replace(stage, durations_ms=[marker] * 50_000 + stage.durations_ms)
        for stage in run.stages
    ]
    hotspots = [
        Hotspot(
            rank=rank,
            function=f"f{rank}",
            file="module.py",
            line=rank,
            stage="inference",
            self_s=1.0 / rank,
            total_s=1.0 / rank,
            share=0.01,
            user_code=True,
        )
        for rank in range(1, 5001)
    ]
    large = dataclasses.replace(
        run,
        requests=dataclasses.replace(run.requests, latencies_ms=latencies),
        stages=stages,
        hotspots=hotspots,
    )

    page = render_html(large)

    assert len(page.encode("utf-8")) < 300_000
    assert str(marker) not in page


def test_environment_section_shows_command_and_packages(default_page: str) -> None:
    environment = section(default_page, "environment")

    for text in (
        "aitax run --requests 400 serve_batch.py --batch 8",
        "3.11.7 (CPython)",
        "Intel(R) Xeon(R) Platinum 8375C",
        "8 logical cores",
        "3f9c2e1a7b",
        "scikit-learn",
        "1.5.2",
    ):
        assert text in environment


def test_environment_variables_are_not_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AITAX_REPORT_TEST_SECRET", secret)

    page = render_html(make_run())

    assert secret not in page
    assert "AITAX_REPORT_TEST_SECRET" not in page


def test_passes_show_status_and_error() -> None:
    results = [
        PassResult(name="clean", status="ok", wall_s=12.0, exit_code=0),
        PassResult(
            name="memory",
            status="failed",
            wall_s=0.8,
            exit_code=1,
            error="memray is not available on this platform",
        ),
        PassResult(name="line", status="skipped", error="not run: interrupted by SIGINT"),
    ]
    passes = section(render_html(make_run(passes=results)), "passes")

    assert "status-ok" in passes
    assert "status-failed" in passes
    assert "memray is not available on this platform" in passes
    assert "status-skipped" in passes
    assert "not run: interrupted by SIGINT" in passes


def test_artifacts_section_shows_view_command() -> None:
    artifacts = section(render_html(make_run(), view_dir="reports/run 1"), "artifacts")

    assert "aitax view &#39;reports/run 1&#39;" in artifacts
    assert "CPU profile (pyinstrument)" in artifacts


def test_notes_are_listed(default_page: str) -> None:
    notes = section(default_page, "notes")

    assert "The CPU pass ran 9% slower than the clean pass" in notes


# Line heatmaps


def line_profile(function: str, lines: int, hottest: int, file: str = "big.py") -> LineProfile:
    """A profiled function with `lines` measured lines from line 2, hottest at line `hottest`."""
    timings = [
        LineTiming(
            lineno=lineno,
            hits=10,
            time_s=1.0 if lineno == hottest else 0.001,
            per_hit_us=100.0,
            share=0.5 if lineno == hottest else 0.0005,
            source=f"    value_{lineno} = compute(value_{lineno - 1}, {lineno})  # step {lineno}",
        )
        for lineno in range(2, lines + 2)
    ]
    total = sum(timing.time_s for timing in timings)
    return LineProfile(function, file, 1, "inference", True, total, None, timings)


def heatmap_anchors(page: str) -> list[str]:
    return re.findall(r'<article class="heatmap" id="([^"]+)"', page)


def test_heatmap_marks_hottest_line(default_page: str) -> None:
    parsed = parse(default_page)

    assert "hot" in parsed.row_classes["lines-1-L45"]
    hot_rows = [row for row, classes in parsed.row_classes.items() if "hot" in classes]
    assert hot_rows == ["lines-1-L45", "lines-2-L90", "lines-3-L20"]
    assert 'Hottest line <a href="#lines-1-L45">45</a>' in section(default_page, "lines")


def test_heatmap_row_shows_hits_time_and_share(default_page: str) -> None:
    row = parse(default_page).rows["lines-1-L45"]

    assert row == ["45", "2,400", "3.18 s", "1.32 ms", "82.3%", "row = store.get(key)"]


def test_heatmap_functions_are_hottest_first(default_page: str) -> None:
    lines = section(default_page, "lines")

    names = re.findall(r'<h3 class="code">([^<]+)</h3>', lines)
    assert names == ["fetch_user_features", "compute_ratios", "write_audit_log"]
    assert heatmap_anchors(default_page) == ["lines-1", "lines-2", "lines-3"]


def test_heatmap_header_shows_function_total(default_page: str) -> None:
    lines = section(default_page, "lines")
    single = line_profile("tiny_fn", 1, hottest=2)
    single.total_s = 0.00042
    tiny = section(render_html(make_run(lines=[single])), "lines")

    assert "3.86 s over 7 lines" in lines
    assert "pipeline/features.py:41" in lines
    assert "0.42 ms over 1 line<" in tiny


def test_heatmap_marks_skipped_lines(default_page: str) -> None:
    classes = parse(default_page).row_classes

    assert "gap" in classes["lines-1-L48"]
    assert "gap" not in classes["lines-1-L46"]


def test_heatmap_bar_follows_share(default_page: str) -> None:
    assert 'id="lines-1-L45" style="--share: 0.823"' in default_page


def test_unprofiled_functions_show_reason(default_page: str) -> None:
    lines = section(default_page, "lines")
    not_profiled = lines[lines.index('id="lines-not-profiled"') :]

    assert "score_async" in not_profiled
    assert "asynchronous code that line_profiler does not trace" in not_profiled
    assert "Model.predict" in not_profiled
    assert "its definition was not found in the source" in not_profiled
    assert "score_async" not in lines[: lines.index('id="lines-not-profiled"')]


def test_profiled_function_without_lines_is_not_a_heatmap() -> None:
    empty = LineProfile("empty_fn", "pipeline/x.py", 3, "other", profiled=True, total_s=0.0)
    page = render_html(make_run(lines=[empty]))
    lines = section(page, "lines")

    assert heatmap_anchors(page) == []
    assert "empty_fn" in lines
    assert _heatmap.NO_LINES_REASON in lines


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (None, "This run did not include the line pass."),
        (
            PassResult(name="line", status="failed", exit_code=1, error="line_profiler crashed"),
            "The line pass failed",
        ),
        (
            PassResult(name="line", status="skipped", error="not run: interrupted by SIGTERM"),
            "The line pass was skipped: not run: interrupted by SIGTERM",
        ),
        (
            PassResult(name="line", status="ok", wall_s=1.0, exit_code=0),
            "The line pass chose no functions to profile.",
        ),
    ],
)
def test_missing_line_profiles_are_explained(result: PassResult | None, message: str) -> None:
    passes = [PassResult(name="clean", status="ok"), *([result] if result else [])]
    lines = section(render_html(make_run(lines=[], passes=passes)), "lines")

    assert message in lines
    assert "<table" not in lines
    if result is not None and result.error:
        assert result.error in lines


def test_finding_locations_link_to_heatmap(default_page: str) -> None:
    findings = section(default_page, "findings")

    assert '<a class="location code" href="#lines-1-L45">pipeline/features.py:45</a>' in findings
    assert '<a class="location code" href="#lines-2">pipeline/features.py:88</a>' in findings


def test_hotspot_and_allocation_locations_link(default_page: str) -> None:
    hotspots = section(default_page, "hotspots")
    memory = section(default_page, "memory")

    assert '<a class="location" href="#lines-1">pipeline/features.py:41</a>' in hotspots
    assert '<a class="location" href="#lines-2-L90">pipeline/features.py:90</a>' in memory
    assert '<a class="location" href="#lines-3-L19">pipeline/audit.py:19</a>' in memory


def test_location_outside_heatmaps_is_not_linked() -> None:
    findings = [dataclasses.replace(make_findings()[0], locations=["pipeline/features.py:300"])]
    page = render_html(make_run(findings=findings))

    assert "<code>pipeline/features.py:300</code>" in section(page, "findings")


@pytest.mark.parametrize("run_name", ["default", "hostile"])
def test_internal_links_have_targets(run_name: str) -> None:
    run = make_run() if run_name == "default" else make_hostile_run()
    parsed = parse(render_html(run))

    ids = {value for _, name, value in parsed.attributes if name == "id"}
    hrefs = [value or "" for tag, name, value in parsed.attributes if name == "href"]
    internal = [href[1:] for href in hrefs if href.startswith("#")]
    assert internal
    assert [target for target in internal if target not in ids] == []


def test_hostile_locations_link_with_safe_ids(hostile_page: str) -> None:
    parsed = parse(hostile_page)

    ids = [value or "" for _, name, value in parsed.attributes if name == "id"]
    heat_ids = [value for value in ids if value.startswith("lines-")]
    assert "lines-1-L45" in heat_ids
    assert all(
        re.fullmatch(r"lines-[0-9]+(-L[0-9]+)?|lines-not-profiled", value) for value in heat_ids
    )
    escaped = "/srv/&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert f'href="#lines-1-L45">{escaped}' in section(hostile_page, "findings")


def test_hostile_source_text_is_escaped(hostile_page: str) -> None:
    lines = section(hostile_page, "lines")

    assert "row = store.get(key)  # &lt;/script&gt;&lt;img src=x" in lines
    assert "<img" not in lines
    assert "\\x1b[31m" in lines


def test_heatmap_caps_lines_around_hottest() -> None:
    page = render_html(make_run(lines=[line_profile("long_fn", 1000, hottest=700)]))
    rows = [row for row in parse(page).rows if row.startswith("lines-1-")]

    limit = _heatmap.MAX_LINES_PER_FUNCTION
    assert len(rows) == limit
    assert "lines-1-L700" in rows
    assert rows[0] == "lines-1-L500"
    assert rows[-1] == "lines-1-L899"
    assert f"Showing lines 500\u2013899, {limit} of 1,000 measured lines" in page


def test_heatmap_caps_functions_and_lines() -> None:
    profiles = [line_profile(f"fn_{index}", 300, hottest=100) for index in range(30)]
    page = render_html(make_run(lines=profiles))

    rows = [row for row in parse(page).rows if row.startswith("lines-")]
    assert len(rows) <= _heatmap.MAX_HEATMAP_LINES
    assert len(heatmap_anchors(page)) <= _heatmap.MAX_HEATMAP_FUNCTIONS
    assert "of 30 line-profiled functions" in page


def test_heatmap_cuts_long_source_lines() -> None:
    profile = line_profile("wide_fn", 3, hottest=2)
    wide = "x = " + "1 + " * 400 + "1"
    profile.lines[0] = dataclasses.replace(profile.lines[0], source=wide)
    page = render_html(make_run(lines=[profile]))

    source = parse(page).rows["lines-1-L2"][-1]
    assert len(source) == _heatmap.MAX_SOURCE_CHARACTERS
    assert source.endswith("…")
    assert "Source lines longer than" in section(page, "lines")


def test_big_line_and_memory_run_page_stays_small() -> None:
    profiles = [line_profile(f"fn_{index}", 1000, hottest=500) for index in range(40)]
    profiles += [
        LineProfile(f"missing_{index}", "m.py", index, "other", False, reason="no hits")
        for index in range(300)
    ]
    site = make_memory().top_allocations[0]
    sites = [dataclasses.replace(site, line=index) for index in range(1, 2001)]
    memory = dataclasses.replace(make_memory(), top_allocations=sites, peak_locations=sites)

    page = render_html(make_run(lines=profiles, memory=memory))

    assert len(page.encode("utf-8")) < 1_000_000
    assert len(parse(page).tables["allocations"]) == _memory.MAX_ALLOCATION_ROWS
    assert "Showing 50 of 300 functions without line timings." in page


# Memory


def test_memory_section_shows_peaks_and_notes(default_page: str) -> None:
    memory = section(default_page, "memory")

    for text in (
        "412.0 MiB",
        "845.0 MiB",
        "differ by 51%",
        "21.2 MiB",
        "11,840.5 allocations per request",
        "heap grows 8.0 KiB per request",
        "8.4 GiB",
        "4,740,800 allocations",
    ):
        assert text in memory


def test_memory_chart_is_drawn(default_page: str) -> None:
    memory = section(default_page, "memory")

    assert 'aria-label="Bytes allocated per stage"' in memory
    assert "feature_compute" in memory


def test_memory_stage_table_lists_stages(default_page: str) -> None:
    rows = parse(default_page).tables["memory-stages"]

    assert [row[0] for row in rows] == [
        "feature_compute",
        "feature_fetch",
        "inference",
        "logging",
        "unmarked",
    ]
    assert rows[0][1:] == ["6.1 GiB", "2,910,400", "398.0 MiB"]


def test_top_allocations_are_sortable(default_page: str) -> None:
    parsed = parse(default_page)
    rows = parsed.tables["allocations"]
    data_block = next(
        text for attributes, text in parsed.scripts if attributes.get("id") == "aitax-sort-keys"
    )
    keys = json.loads(data_block)

    assert len(rows) == len(make_memory().top_allocations)
    assert rows[0][:5] == [
        "compute_ratios",
        "pipeline/features.py:90",
        "feature_compute",
        "—",
        "3.8 GiB",
    ]
    assert "to_numpy" in [row[3] for row in rows]
    assert len(keys["allocations"]) == len(rows)
    assert keys["allocations"][0][4] == make_memory().top_allocations[0].allocated_bytes


def test_leak_suspects_are_listed(default_page: str) -> None:
    memory = section(default_page, "memory")
    leaks = memory[memory.index("Leak suspects") :]

    assert "write_audit_log" in leaks
    assert "3.1 MiB" in leaks
    assert "7.9 KiB" in leaks


def test_no_leak_suspects_without_requests_says_why() -> None:
    memory_profile = dataclasses.replace(
        make_memory(), leak_suspects=[], allocations_per_request=None, bytes_per_request=None
    )
    memory = section(render_html(make_run(memory=memory_profile)), "memory")

    assert "this run marked none" in memory


def test_memory_tables_are_capped() -> None:
    site = make_memory().top_allocations[0]
    sites = [
        dataclasses.replace(site, line=index, allocated_bytes=index) for index in range(1, 121)
    ]
    page = render_html(make_run(memory=dataclasses.replace(make_memory(), top_allocations=sites)))

    rows = parse(page).tables["allocations"]
    assert len(rows) == _memory.MAX_ALLOCATION_ROWS
    assert rows[0][1] == "pipeline/features.py:120"
    assert f"Showing the top {_memory.MAX_ALLOCATION_ROWS} of 120 allocation sites." in page


def test_missing_memory_profile_shows_pass_error() -> None:
    passes = [
        PassResult(name="clean", status="ok"),
        PassResult(name="memory", status="failed", exit_code=1, error="memray: no such tracker"),
    ]
    memory = section(render_html(make_run(memory=None, passes=passes)), "memory")

    assert "The memory pass failed" in memory
    assert "memray: no such tracker" in memory
    assert "<table" not in memory


def test_hostile_memory_sites_are_escaped(hostile_page: str) -> None:
    memory = section(hostile_page, "memory")

    assert "<img" not in memory
    assert "compute_ratios&lt;/script&gt;" in memory
    assert "\\x00" in memory


def test_memory_chart_escapes_stage_names() -> None:
    page = render_html(make_hostile_run())
    memory = section(page, "memory")
    chart_start = memory.index('aria-label="Bytes allocated per stage"')
    chart = memory[chart_start : memory.index("</svg>", chart_start)]

    assert "<img" not in chart
    assert "&lt;/script&gt;" in chart


# Partial runs, savings and cost


def test_partial_run_shows_banner_first() -> None:
    page = render_html(make_run(partial=True, stop_reason="interrupted by SIGINT"))
    verdict = section(page, "verdict")

    assert "Partial run: interrupted by SIGINT." in verdict
    assert verdict.index("alert-partial") < verdict.index("kpi-grid")
    assert "partial run</span>" in page[: page.index("<main")]


def test_complete_run_has_no_partial_banner(default_page: str) -> None:
    assert 'class="alert alert-partial"' not in default_page
    assert "Partial run" not in default_page
    assert "partial run</span>" not in default_page


def test_fix_first_shows_saving_per_request(default_page: str) -> None:
    verdict = section(default_page, "verdict")

    assert "≈ 9.60 ms per request" in verdict
    assert "3.84 s over the run · 32.0% of wall time" in verdict


def test_saving_without_requests_is_over_the_run() -> None:
    finding_without_requests = dataclasses.replace(make_findings()[0], saving_per_request_ms=None)
    verdict = section(render_html(make_run(findings=[finding_without_requests])), "verdict")

    assert "≈ 3.84 s over the run" in verdict
    assert "per request</span>" not in verdict
    assert "32.0% of wall time" in verdict


def test_severity_grading_quotes_rule_thresholds(default_page: str) -> None:
    findings = section(default_page, "findings")
    grading = findings[findings.index('id="severity-grading"') : findings.index("<article")]

    assert f"at least {format_share(HIGH_SAVING_SHARE)}" in grading
    assert f"at least {format_share(MEDIUM_SAVING_SHARE)}" in grading
    assert f"below {format_share(MEDIUM_SAVING_SHARE)}" in grading
    assert "p99 latency" in grading


def test_cost_shows_dollars(default_page: str) -> None:
    verdict = section(default_page, "verdict")

    assert "$0.0028" in verdict


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (1234.5, "$1,234.50"),
        (0.0283, "$0.0283"),
        (0.00283, "$0.00283"),
        (1.58e-05, "$0.0000158"),
        (0.0, "$0"),
        (None, "—"),
    ],
)
def test_cost_format_avoids_exponents(amount: float | None, text: str) -> None:
    assert format_cost(amount) == text


def test_location_links_ignore_malformed_locations() -> None:
    heatmaps = _heatmap.build_heatmaps(make_line_profiles())

    links = heatmaps.location_links(
        [
            "pipeline/features.py",
            "pipeline/features.py:",
            "pipeline/features.py:4x",
            ":45",
            "a:b:45",
        ]
    )
    assert links == {}


# Atomic writer


def test_write_html_replaces_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    write_html(make_run(), path)

    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.listdir(tmp_path) == ["report.html"]


def test_write_html_keeps_old_report_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    def fail_replace(source: str, destination: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        write_html(make_run(), path)

    assert path.read_text(encoding="utf-8") == "old report"
    assert os.listdir(tmp_path) == ["report.html"]


def test_write_html_creates_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "report.html"

    write_html(make_run(), path)

    assert path.stat().st_mode & 0o644 == 0o644
    assert HOSTILE not in path.read_text(encoding="utf-8")
