"""A live ``terminus serve`` with real models, and headless Chromium (Debian's) driving it.

Screenshots of every page land in ``$TERMINUS_UI_SHOTS`` (default: a folder under the
system temp dir); the folder is printed at the end of the run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webkit import KEY, SHOTS, LiveServer, serve_live, shot

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_live(tmp_path_factory.mktemp("webapp-home")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (the test runs Debian's)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page already holding the API key, that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(f"localStorage.setItem('terminus.apiKey', '{KEY}')")
    page = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.url, "data:", "blob:"))
            else outside.append(request.url)
        ),
    )
    page.set_default_timeout(120_000)
    yield page
    if getattr(request.node, "failed_call", False):
        shot(page, f"failed-{request.node.name}")  # what the page showed when the test failed
    context.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not outside, f"the page fetched from outside the server: {outside}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SHOTS.is_dir() and any(SHOTS.glob("*.png")):
        terminalreporter.write_line(f"web app screenshots: {SHOTS}")
