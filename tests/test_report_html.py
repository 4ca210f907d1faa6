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

from aitax.model.run import Finding, Hotspot, RequestStats, Severity, StageStats
from aitax.report import charts, html
from aitax.report.html import MAX_HOTSPOT_ROWS, render_html, write_html
from report_fixtures import (
    HOSTILE,
    INJECTED_IMG,
    SCRIPT_CLOSE,
    make_findings,
    make_hostile_run,
    make_hotspots,
    make_run,
)


class _PageParser(HTMLParser):
    """Collect attributes, script bodies, section texts and table cells of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[str, str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._script: dict[str, str | None] | None = None
        self._script_text: list[str] = []
        self._table: str | None = None
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
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._script_text)))
            self._script = None
        elif tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
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
    return page[start:page.index("</section>", start)]


@pytest.fixture(scope="module")
def default_page() -> str:
    return render_html(make_run())


@pytest.fixture(scope="module")
def hostile_page() -> str:
    return render_html(make_hostile_run())


def finding(title: str, severity: Severity, saving_ms: float) -> Finding:
    return dataclasses.replace(make_findings()[0], title=title, severity=severity,
                               estimated_saving_ms=saving_ms)


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

    links = [(tag, name, value) for tag, name, value in parsed.attributes
             if name in ("src", "href", "xlink:href", "action")]
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

    policy = next(value for tag, name, value in parsed.attributes
                  if tag == "meta" and name == "content" and value and "default-src" in value)
    executable = [text for attributes, text in parsed.scripts if "type" not in attributes]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert html._csp_hash(executable[0]) in policy


def test_sections_appear_in_order(default_page: str) -> None:
    page = default_page

    order = ["verdict", "stages", "latency", "hotspots", "findings", "passes", "environment",
             "artifacts", "notes"]
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

    data_block = next(text for attributes, text in parsed.scripts
                      if attributes.get("id") == "aitax-sort-keys")
    keys = json.loads(data_block)
    assert keys["hotspots"][0][1] == run.hotspots[0].function
    assert keys["stages"][0][0] == run.stages[0].name


def test_control_characters_are_shown_as_escapes(hostile_page: str) -> None:
    page = hostile_page

    assert "\x00" not in page
    assert "\x07" not in page
    assert "\x1b" not in page
    assert "\\x1b[31m" in page


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
    stages = [dataclasses.replace(stage, name=name) if stage.name == "inference" else stage
              for stage in run.stages]
    hotspots = [dataclasses.replace(hotspot, function=name, stage=name)
                for hotspot in run.hotspots]

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
    assert "<path id=\"DejaVu" not in svg
    assert "currentColor" in svg


def test_stage_names_in_svg_are_escaped() -> None:
    name = 'a</script><img src=x>"&'
    stage = StageStats(name=name, total_s=1.0, share=0.5, cpu_s=None, count=None, p50_ms=None,
                       p95_ms=None, p99_ms=None, source="marked")

    svg = charts.stage_breakdown_svg([stage], charts.stage_colors([stage]))

    assert svg is not None
    assert "</script>" not in svg
    assert "<img" not in svg
    root = ElementTree.fromstring(svg.replace("<svg", '<svg xmlns:xlink="urn:xlink"', 1))
    texts = [element.text for element in root.iter() if element.tag == "text"]
    assert name in texts


def test_dollar_signs_are_drawn_literally() -> None:
    stage = StageStats(name="$x^2$ and $", total_s=1.0, share=0.5, cpu_s=None, count=None,
                       p50_ms=None, p95_ms=None, p99_ms=None, source="marked")

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

    assert [row[0] for row in rows] == ["feature_fetch", "feature_compute", "inference",
                                        "logging", "json_decode", "other"]


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
    for text in (repeated.title, repeated.evidence, repeated.saving_basis, repeated.fix,
                 repeated.category, repeated.stage, "9.60 ms", "pipeline/features.py:41"):
        assert text in findings_html
    assert "<pre class=\"sketch\"><code>features = fetch_user_features(user_id)" in findings_html


def test_kpis_show_latency_throughput_memory_and_cost(default_page: str) -> None:
    verdict = section(default_page, "verdict")

    for text in ("27.1 ms", "48.9 ms", "63.4 ms", "33.3 req/s", "267 items/s", "812.0 MiB",
                 "0.0028", "12.0 s"):
        assert text in verdict


def test_failed_target_shows_traceback_first() -> None:
    run = make_run(exit_code=2, traceback="Traceback (most recent call last):\nKeyError: 'x'")
    verdict = section(render_html(run), "verdict")

    assert "exited with status 2" in verdict
    assert "KeyError: &#39;x&#39;" in verdict
    assert "kpi-bad" in verdict


def test_missing_requests_explain_how_to_mark_them() -> None:
    requests = RequestStats(count=0, items=0, p50_ms=None, p95_ms=None, p99_ms=None,
                            mean_ms=None, max_ms=None, throughput_rps=None,
                            throughput_items_per_s=None)
    page = render_html(make_run(requests=requests))

    assert "with aitax.request():" in section(page, "latency")
    assert "no requests marked" in section(page, "verdict")
    assert 'aria-label="Histogram of request latency"' not in page


def test_hotspots_are_capped() -> None:
    template = make_hotspots()[0]
    hotspots = [dataclasses.replace(template, rank=rank, function=f"function_{rank}")
                for rank in range(1, 501)]
    page = render_html(make_run(hotspots=hotspots))

    rows = parse(page).tables["hotspots"]
    assert len(rows) == MAX_HOTSPOT_ROWS
    assert rows[-1][1] == f"function_{MAX_HOTSPOT_ROWS}"
    assert f"Showing the top {MAX_HOTSPOT_ROWS} of 500 hotspots." in page


def test_many_stages_are_capped_in_charts() -> None:
    template = make_run().stages[0]
    stages = [dataclasses.replace(template, name=f"stage_{index:02d}", total_s=float(index))
              for index in range(1, 31)]
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
    stages = [dataclasses.replace(stage, durations_ms=[marker] * 50_000 + stage.durations_ms)
              for stage in run.stages]
    hotspots = [
        Hotspot(rank=rank, function=f"f{rank}", file="module.py", line=rank, stage="inference",
                self_s=1.0 / rank, total_s=1.0 / rank, share=0.01, user_code=True)
        for rank in range(1, 5001)
    ]
    large = dataclasses.replace(run, requests=dataclasses.replace(run.requests,
                                latencies_ms=latencies), stages=stages, hotspots=hotspots)

    page = render_html(large)

    assert len(page.encode("utf-8")) < 300_000
    assert str(marker) not in page


def test_environment_section_shows_command_and_packages(default_page: str) -> None:
    environment = section(default_page, "environment")

    for text in ("aitax run --requests 400 serve_batch.py --batch 8", "3.11.7 (CPython)",
                 "Intel(R) Xeon(R) Platinum 8375C", "8 logical cores", "3f9c2e1a7b",
                 "scikit-learn", "1.5.2"):
        assert text in environment


def test_environment_variables_are_not_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AITAX_REPORT_TEST_SECRET", secret)

    page = render_html(make_run())

    assert secret not in page
    assert "AITAX_REPORT_TEST_SECRET" not in page


def test_passes_show_status_and_error(default_page: str) -> None:
    passes = section(default_page, "passes")

    assert "status-failed" in passes
    assert "memray is not available on this platform" in passes
    assert "status-skipped" in passes


def test_artifacts_section_shows_view_command() -> None:
    artifacts = section(render_html(make_run(), view_dir="reports/run 1"), "artifacts")

    assert "aitax view &#39;reports/run 1&#39;" in artifacts
    assert "CPU profile (pyinstrument)" in artifacts


def test_notes_are_listed(default_page: str) -> None:
    notes = section(default_page, "notes")

    assert "The memory pass failed, so peak RSS comes from the timing pass." in notes


# Atomic writer


def test_write_html_replaces_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report", encoding="utf-8")

    write_html(make_run(), path)

    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.listdir(tmp_path) == ["report.html"]


def test_write_html_keeps_old_report_on_failure(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
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
