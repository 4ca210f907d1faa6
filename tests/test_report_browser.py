"""The HTML report in headless Chromium: no errors, no requests, working sort, no injection.

These tests need Debian's Chromium at /usr/bin/chromium and the Playwright
package. They fail, never skip, when Chromium is missing, because a report that
was never opened in a browser is not tested.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from aitax.model.run import Run
from aitax.report.html import write_html
from browser_helpers import (
    ChromiumMissingError,
    PageEvents,
    new_page,
    require_chromium,
    screenshot,
    start_context,
)
from report_fixtures import HOSTILE, make_hostile_run, make_hotspots, make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Stage breakdown, stage share, latency histogram, stage durations and memory by stage.
CHART_COUNT = 5


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    try:
        require_chromium()
    except ChromiumMissingError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    try:
        require_chromium()
    except ChromiumMissingError as error:
        pytest.fail(str(error))
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    context = start_context(playwright, tmp_path_factory.mktemp("chromium-profile"))
    yield context
    context.close()


@pytest.fixture
def opened(browser: BrowserContext) -> Iterator[tuple[Page, PageEvents]]:
    page, events = new_page(browser)
    yield page, events
    page.close()


def load(page: Page, run: Run, tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    write_html(run, path)
    page.goto(path.as_uri(), wait_until="load")
    return path


def assert_quiet(events: PageEvents) -> None:
    assert events.console_errors == []
    assert events.page_errors == []
    assert events.external_requests == []
    assert events.dialogs == []


def column_texts(page: Page, table: str, column: int) -> list[str]:
    selector = f"table[data-sortable={table}] tbody tr td:nth-child({column})"
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_report_loads_without_errors_or_requests(
    opened: tuple[Page, PageEvents], tmp_path: Path
) -> None:
    page, events = opened

    load(page, make_run(), tmp_path)

    assert page.title() == "aitax · serve_batch.py"
    assert page.locator("svg.chart-svg").count() == CHART_COUNT
    assert page.locator("#memory svg.chart-svg").count() == 1
    assert_quiet(events)


def test_header_click_sorts_rows(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened
    shuffled = [
        dataclasses.replace(hotspot, total_s=total)
        for hotspot, total in zip(make_hotspots(), [0.3, 2.0, 0.1, 5.0, 1.0, 0.7], strict=True)
    ]
    load(page, make_run(hotspots=shuffled), tmp_path)
    initial = column_texts(page, "hotspots", 2)
    table = page.locator("table[data-sortable=hotspots]")

    table.get_by_role("button", name="Function").click()
    by_function = column_texts(page, "hotspots", 2)
    table.get_by_role("button", name="Function").click()
    by_function_reversed = column_texts(page, "hotspots", 2)
    table.get_by_role("button", name="Total").click()
    by_total = column_texts(page, "hotspots", 6)

    assert by_function != initial
    assert by_function == sorted(initial, key=str.lower)
    assert by_function_reversed == list(reversed(by_function))
    assert by_total == ["5.00 s", "2.00 s", "1.00 s", "0.700 s", "0.300 s", "0.100 s"]
    header = page.locator("table[data-sortable=hotspots] th", has_text="Total")
    assert header.get_attribute("aria-sort") == "descending"
    assert_quiet(events)


def test_missing_values_sort_last(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)

    page.get_by_role("button", name="CPU").click()
    ascending = column_texts(page, "stages", 4)
    page.get_by_role("button", name="CPU").click()
    descending = column_texts(page, "stages", 4)

    assert ascending[0] == "2.80 s"
    assert ascending[-1] == "—"
    assert descending[-1] == "—"
    assert_quiet(events)


def test_hostile_run_executes_no_injected_script(
    opened: tuple[Page, PageEvents], tmp_path: Path
) -> None:
    page, events = opened

    load(page, make_hostile_run(), tmp_path)
    page.locator("table[data-sortable=hotspots]").get_by_role("button", name="Function").click()
    page.locator("table[data-sortable=allocations]").get_by_role("button", name="Stage").click()
    page.locator("#findings a.location").first.click()

    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    assert page.locator("[onerror]").count() == 0
    assert "</script><img src=x onerror=alert(1)>" in page.locator("h1").inner_text()
    assert "</script><img src=x onerror=alert(1)>" in page.locator("#lines").inner_text()
    assert "</script><img src=x onerror=alert(1)>" in page.locator("#memory").inner_text()
    assert page.url.endswith("#lines-1-L45")
    assert_quiet(events)


def test_hostile_names_show_as_text(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, _ = opened

    load(page, make_hostile_run(), tmp_path)
    functions = column_texts(page, "hotspots", 2)

    visible = (
        HOSTILE.replace("\x00", "\\x00")
        .replace("\x07", "\\x07")
        .replace("\x1b", "\\x1b")
        .replace("\u202e", "\\u202e")
    )
    assert functions[0] == f"fetch_user_features{visible}"


def test_tables_render_without_javascript(playwright: Playwright, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(make_run(), path)
    profile = tmp_path / "profile"
    profile.mkdir()

    context = start_context(playwright, profile, javascript=False)
    try:
        page, events = new_page(context)
        page.goto(path.as_uri(), wait_until="load")
        rows = page.locator("table[data-sortable=hotspots] tbody tr").count()
        buttons = page.locator("button.sort-button").count()
        svg_count = page.locator("svg.chart-svg").count()
    finally:
        context.close()

    assert rows == len(make_hotspots())
    assert buttons == 0
    assert svg_count == CHART_COUNT
    assert events.external_requests == []


def test_dark_mode_changes_colors(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)
    background = "getComputedStyle(document.body).backgroundColor"

    page.emulate_media(color_scheme="light")
    light = page.evaluate(background)
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(background)

    assert light == "rgb(245, 246, 248)"
    assert dark == "rgb(15, 17, 21)"
    assert_quiet(events)


def test_report_prints_to_pdf(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)

    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)

    assert pdf.startswith(b"%PDF")
    assert len(pdf) > 10_000
    assert not page.locator("nav.toc").is_visible()
    assert_quiet(events)


def test_screenshot_is_nonempty_png(browser: BrowserContext, tmp_path: Path) -> None:
    html_path = tmp_path / "report.html"
    png_path = tmp_path / "report.png"
    write_html(make_run(), html_path)

    events = screenshot(html_path, png_path, width=1280, height=900, context=browser)

    data = png_path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert (width, height) == (1280, 900)
    assert_quiet(events)


def test_location_link_jumps_to_heatmap_line(
    opened: tuple[Page, PageEvents], tmp_path: Path
) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)

    page.locator("#findings a.location", has_text="pipeline/features.py:45").click()

    target = page.locator("#lines-1-L45")
    assert page.url.endswith("#lines-1-L45")
    assert target.is_visible()
    assert target.bounding_box() is not None
    assert "row = store.get(key)" in target.inner_text()
    assert_quiet(events)


def test_allocation_table_sorts(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)
    table = page.locator("table[data-sortable=allocations]")

    table.get_by_role("button", name="Allocations").click()
    counts = column_texts(page, "allocations", 6)

    numbers = [int(text.replace(",", "")) for text in counts]
    assert numbers == sorted(numbers, reverse=True)
    assert numbers[0] == 1_600_000
    assert_quiet(events)


def test_hottest_line_stands_out_in_both_schemes(
    opened: tuple[Page, PageEvents], tmp_path: Path
) -> None:
    page, events = opened
    load(page, make_run(), tmp_path)
    background = "(selector) => getComputedStyle(document.querySelector(selector)).backgroundColor"
    hot_cell = "#lines-1-L45 td:nth-child(2)"
    plain_cell = "#lines-1-L44 td:nth-child(2)"

    page.emulate_media(color_scheme="light")
    light_hot = page.evaluate(background, hot_cell)
    light_plain = page.evaluate(background, plain_cell)
    page.emulate_media(color_scheme="dark")
    dark_hot = page.evaluate(background, hot_cell)

    assert light_hot != light_plain
    assert light_hot == "rgb(255, 241, 230)"
    assert dark_hot == "rgb(58, 36, 22)"
    assert_quiet(events)


def test_partial_banner_is_visible(opened: tuple[Page, PageEvents], tmp_path: Path) -> None:
    page, events = opened

    load(page, make_run(partial=True, stop_reason="interrupted by SIGINT"), tmp_path)

    banner = page.locator(".alert-partial")
    assert banner.is_visible()
    assert "Partial run: interrupted by SIGINT." in banner.inner_text()
    assert_quiet(events)
