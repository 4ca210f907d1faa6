"""Headless Chromium for the report tests and for the README screenshot.

Chromium is Debian's build at /usr/bin/chromium, driven through Playwright. It
runs with flags that keep it off the network. Every page opened through
`new_page` aborts any request that is not a `file:` URL and records it, so a
report that tries to load something from outside fails its test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)

CHROMIUM_PATH = Path("/usr/bin/chromium")

# --headless is added by Playwright itself, and the profile folder is passed to
# launch_persistent_context, which turns it into --user-data-dir.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissingError(RuntimeError):
    """Chromium is not installed where the browser tests expect it."""


@dataclass
class PageEvents:
    """What a page did while it was open: console errors, non-file requests, dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def require_chromium() -> Path:
    """Return the Chromium path, or raise with the command that installs it."""
    if not CHROMIUM_PATH.is_file():
        raise ChromiumMissingError(
            f"Chromium not found at {CHROMIUM_PATH}. Install it with "
            "`apt-get update && apt-get install -y chromium`."
        )
    return CHROMIUM_PATH


def start_context(
    playwright: Playwright,
    profile: Path,
    width: int = 1280,
    height: int = 900,
    javascript: bool = True,
) -> BrowserContext:
    """Start headless Chromium on the empty profile folder `profile`, with no network access."""
    executable = require_chromium()
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(executable),
        args=list(CHROMIUM_FLAGS),
        headless=True,
        viewport={"width": width, "height": height},
        offline=True,
        java_script_enabled=javascript,
    )


@contextmanager
def launch_browser(
    width: int = 1280, height: int = 900, javascript: bool = True
) -> Iterator[BrowserContext]:
    """Start headless Chromium with a fresh, temporary profile, and stop it afterwards."""
    require_chromium()
    with (
        tempfile.TemporaryDirectory(prefix="aitax-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = start_context(playwright, Path(profile), width, height, javascript)
        try:
            yield context
        finally:
            context.close()


def new_page(context: BrowserContext) -> tuple[Page, PageEvents]:
    """Open a page that records console errors, dialogs and non-file requests."""
    events = PageEvents()
    page = context.new_page()
    _record_events(page, events)
    return page, events


@contextmanager
def open_page(
    width: int = 1280, height: int = 900, javascript: bool = True
) -> Iterator[tuple[Page, PageEvents]]:
    """Open one recorded page (see `new_page`) in a browser of its own."""
    with launch_browser(width, height, javascript) as context:
        yield new_page(context)


def _record_events(page: Page, events: PageEvents) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            events.console_errors.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith("file:"):
            events.external_requests.append(request.url)

    def on_dialog(dialog: Dialog) -> None:
        events.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_route(route: Route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda error: events.page_errors.append(str(error)))
    page.on("request", on_request)
    page.on("dialog", on_dialog)
    page.route("**/*", on_route)


def screenshot(
    html_path: Path,
    png_path: Path,
    width: int = 1280,
    height: int = 900,
    full_page: bool = False,
    context: BrowserContext | None = None,
) -> PageEvents:
    """Save a PNG of `html_path` as Chromium shows it at `width` x `height` CSS pixels.

    With `full_page` the whole page is captured, not only the first screen. A
    browser is started for the call unless `context` is given. Returns what the
    page did, so callers can reject console errors.
    """
    if context is None:
        with launch_browser(width, height) as own_context:
            return screenshot(html_path, png_path, width, height, full_page, own_context)

    page, events = new_page(context)
    try:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(html_path.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(png_path), full_page=full_page)
    finally:
        page.close()
    return events
