"""The chat page's attach button in a real browser (Debian's Chromium) on a live server:
an attached red picture goes to SmolLM2 with its colour projector, which answers "red"."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from images import square
from liveserver import LiveServer
from visionkit import VISION_MODEL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webapp"))
from webkit import shot  # noqa: E402

pytestmark = pytest.mark.real

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(vision_home: Path) -> Iterator[LiveServer]:
    live = LiveServer(vision_home, ["--model", VISION_MODEL]).start()
    yield live
    live.stop()


@pytest.fixture
def page(server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (the test runs Debian's)")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(120_000)
        yield page
        browser.close()
    assert not errors, f"script errors on the page: {errors}"


def test_attach_an_image_and_get_it_described(
    page: Any, server: LiveServer, tmp_path: Path
) -> None:
    picture = tmp_path / "red.png"
    picture.write_bytes(square("red"))
    page.goto(server.url + "/#chat")
    page.locator("#chat-model option").first.wait_for(state="attached")
    page.select_option("#chat-model", "smollm2-135m-instruct")
    assert page.is_disabled("#chat-attach")  # a text-only model takes no image
    page.select_option("#chat-model", VISION_MODEL)
    assert page.is_enabled("#chat-attach")
    page.click(".settings summary")
    page.fill("#chat-system", "You are a helpful assistant.")
    page.fill("#chat-temperature", "0")
    page.fill("#chat-max-tokens", "12")
    with page.expect_file_chooser() as chooser:
        page.click("#chat-attach")
    chooser.value.set_files(str(picture))
    page.locator("#chat-attachments img").wait_for()
    page.fill("#chat-input", "What colour is this picture?")
    page.click("#chat-send")
    reply = page.locator(".message.assistant").last
    reply.locator(".content").filter(has_text=re.compile(r"\S")).wait_for()
    page.locator(".message.assistant.streaming").wait_for(state="detached")
    assert "red" in reply.inner_text().lower()
    assert page.locator(".message.user .attachments img").count() == 1
    assert page.locator("#chat-attachments img").count() == 0  # the tray empties on send
    shot(page, "chat-image")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        saved = api.get("/terminus/v1/conversations").json()["data"]
        convo = api.get(f"/terminus/v1/conversations/{saved[0]['id']}").json()
    assert convo["messages"][0]["images"][0].startswith("data:image/png;base64,")
