"""A real browser (Debian's Chromium) against a live keyless server, as a hostile page.

- A page on another origin POSTs a JSON document as ``text/plain`` with ``no-cors`` (a
  "simple request": no preflight). The browser sends it; the server refuses it.
- DNS rebinding: Chromium resolves ``attacker.example`` to 127.0.0.1, as a rebound
  name would; the page at ``http://attacker.example:PORT`` is then same-origin with the
  server from the browser's point of view, and still gets nothing.
- A page served by the server itself keeps working (same origin).
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import LiveServer, live_server

pytestmark = pytest.mark.real

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ATTACKER = "attacker.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser-home")) as live:  # keyless, no model
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (the test runs Debian's)")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1",  # the rebound name
    ]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def other_site() -> Iterator[str]:
    """An unrelated site on another port: its pages are another origin."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>elsewhere</title><p>a page elsewhere</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


def _statuses(server: LiveServer, path: str, wait_for: int = 0) -> list[int]:
    """The statuses logged for ``path``; waits (5 s at most) until ``wait_for`` are in, as
    the access log line is written after the response went out."""
    deadline = time.monotonic() + 5
    while True:
        text = server.log_text()
        lines = [json.loads(x) for x in text.splitlines() if x.startswith('{"method"')]
        statuses = [line["status"] for line in lines if line["path"] == path]
        if len(statuses) >= wait_for or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)


CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": "read my notes"}]}


def test_cross_site_simple_request_is_refused(
    browser: Any, server: LiveServer, other_site: str
) -> None:
    page = browser.new_page()
    page.goto(other_site)
    path = "/terminus/v1/rag/workspaces/notes/search"
    page.evaluate(
        """async ([url, body]) => {
            await fetch(url, {method: "POST", mode: "no-cors",
                              headers: {"Content-Type": "text/plain"}, body});
        }""",
        [server.url + path, json.dumps({"query": "salary"})],
    )
    # the browser sent it (no preflight for a simple request), with its Origin: refused
    assert _statuses(server, path, wait_for=1) == [403]
    # a CORS-mode JSON POST needs a preflight, which is refused too, so nothing is sent
    result = page.evaluate(
        """async ([url, body]) => {
            try {
                const r = await fetch(url, {method: "POST", body,
                                            headers: {"Content-Type": "application/json"}});
                return r.status;
            } catch (e) { return "blocked"; }
        }""",
        [server.url + "/v1/chat/completions", json.dumps(CHAT)],
    )
    assert result == "blocked"
    assert _statuses(server, "/v1/chat/completions") in ([], [403])
    page.close()


def test_dns_rebinding_gets_nothing(browser: Any, server: LiveServer) -> None:
    page = browser.new_page()
    response = page.goto(f"http://{ATTACKER}:{server.port}/v1/models")
    assert response is not None and response.status == 403
    assert json.loads(page.inner_text("body"))["error"]["code"] == "host_not_allowed"
    # from the browser's view the page and the server are one origin now: no CORS applies
    statuses = page.evaluate(
        """async (body) => [
            (await fetch("/v1/models")).status,
            (await fetch("/v1/chat/completions", {method: "POST", body,
                headers: {"Content-Type": "application/json"}})).status,
        ]""",
        json.dumps(CHAT),
    )
    assert statuses == [403, 403]
    page.close()


def test_a_page_of_the_server_itself_works(browser: Any, server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/health")
    result = page.evaluate(
        """async (body) => {
            const models = await fetch("/v1/models");
            const chat = await fetch("/v1/chat/completions", {method: "POST", body,
                headers: {"Content-Type": "application/json"}});
            return [models.status, chat.status, (await chat.json()).error.code];
        }""",
        json.dumps({**CHAT, "model": "no-such-model"}),
    )
    # same origin: the request reached the endpoint (an unknown model is its own 404)
    assert result == [200, 404, "model_not_found"]
    page.close()
