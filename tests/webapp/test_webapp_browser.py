"""The web app in a real browser (Debian's Chromium) against a live server and real models:
chat streams and stops, a pull's bar reaches 100 %, an ingested file is cited, a WAV is
transcribed, an evaluation report shows its chart — and the page obeys the API key."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from webkit import KEY, LiveServer, shot

pytestmark = pytest.mark.real


def test_the_page_asks_for_the_key_and_then_lists_models(
    browser: Any, live_server: LiveServer
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_server.url + "/")
    dialog = page.locator("#auth")
    dialog.wait_for(state="visible")  # the catalog answered 401: the page asks for the key
    page.fill("#auth-key", KEY)
    page.click("#auth-form button[type=submit]")
    page.locator("#chat-model option").first.wait_for(state="attached")
    options = page.locator("#chat-model option").all_inner_texts()
    assert any(o.startswith("smollm2-135m-instruct") for o in options), options
    assert not any(o.startswith("all-minilm") for o in options)  # only chat models
    context.close()


def test_assets_are_local_and_the_page_is_locked_down(live_server: LiveServer) -> None:
    with live_server.api() as api:
        index = api.get("/")
        assert index.status_code == 200
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', index.text)
        assert sources and all(s.startswith("/ui/") or s.startswith("#") for s in sources)
        assert api.get("/ui/../app.py").status_code == 404
        assert api.get("/ui/nosuch.js").status_code == 404
        etag = api.get("/ui/app.js").headers["etag"]
        assert api.get("/ui/app.js", headers={"If-None-Match": etag}).status_code == 304
    # the data behind the page still needs the key
    import httpx

    assert httpx.get(live_server.url + "/terminus/v1/catalog").status_code == 401


def _send(page: Any, text: str) -> Any:
    page.fill("#chat-input", text)
    page.click("#chat-send")
    return page.locator(".message.assistant").last


def test_chat_streams_an_answer_and_keeps_the_conversation(
    page: Any, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/#chat")
    page.locator("#chat-model option").first.wait_for(state="attached")
    page.select_option("#chat-model", "smollm2-135m-instruct")
    page.click(".settings summary")
    page.fill("#chat-temperature", "0")
    page.fill("#chat-max-tokens", "48")
    reply = _send(page, "What is the capital of France?")
    reply.locator(".content").filter(has_text=re.compile(r"\S")).wait_for()  # text appears
    page.locator(".message.assistant.streaming").wait_for(state="detached")
    assert "Paris" in reply.inner_text()
    assert re.search(r"\d+ tokens", page.inner_text("#chat-status"))
    shot(page, "chat")
    with live_server.api() as api:
        saved = api.get("/terminus/v1/conversations").json()["data"]
        assert saved and saved[0]["title"] == "What is the capital of France?"
        convo = api.get(f"/terminus/v1/conversations/{saved[0]['id']}").json()
        assert [m["role"] for m in convo["messages"]] == ["user", "assistant"]
    page.reload()  # listed after a reload, and opens again
    page.locator(".conversations li button", has_text="What is the capital").first.click()
    page.locator(".message.assistant").first.wait_for()


def test_stop_ends_a_stream(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/#chat")
    page.locator("#chat-model option").first.wait_for(state="attached")
    page.select_option("#chat-model", "smollm2-135m-instruct")
    page.click(".settings summary")
    page.fill("#chat-max-tokens", "1500")
    reply = _send(page, "Write a very long story about a dragon and a lighthouse.")
    reply.locator(".content").filter(has_text=re.compile(r"\S")).wait_for()
    page.click("#chat-stop")
    page.locator("#chat-status", has_text=re.compile("^stopped$")).wait_for()
    length = len(reply.inner_text())
    time.sleep(1.0)
    assert len(reply.inner_text()) == length  # nothing arrives after the stop
    assert page.is_enabled("#chat-send")


def test_pull_shows_progress_to_100(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/#models")
    row = page.locator("tr[data-model='whisper-tiny.en']")
    row.locator("button[data-pull]").click()
    row.locator(".progress[data-percent='100']").wait_for()
    row.locator("td.cached", has_text=re.compile("^yes$")).wait_for()
    shot(page, "models")
    # the chat tests loaded SmolLM2: unload it, then load it again from the page
    smollm2 = page.locator("tr[data-model='smollm2-135m-instruct']")
    smollm2.locator("button[data-unload]").click()
    smollm2.locator("button[data-load]").wait_for()
    assert "smollm2-135m-instruct" not in page.inner_text("#loaded-table")
    smollm2.locator("button[data-load]").click()
    smollm2.locator("button[data-unload]").wait_for()
    assert "smollm2-135m-instruct" in page.inner_text("#loaded-table")


def test_ingest_a_file_and_get_an_answer_citing_it(
    page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    notes = tmp_path / "launch-plan.txt"
    notes.write_text(
        "Mission notes.\n\nThe launch window opens on 14 March 2027 at 06:00 UTC from Kourou.\n\n"
        "The crew trains in Cologne for six months before the flight.\n",
        encoding="utf-8",
    )
    page.goto(live_server.url + "/#documents")
    page.fill("#rag-new-name", "webnotes")
    page.set_input_files("#rag-files", str(notes))
    page.locator("#rag-ingest-status .progress[data-percent='100']").wait_for()
    page.locator("#rag-documents li", has_text="launch-plan.txt").wait_for()
    page.locator("#rag-model option").first.wait_for(state="attached")
    page.select_option("#rag-model", "qwen2.5-coder-0.5b-instruct")
    page.fill("#rag-question", "When does the launch window open?")
    page.click("#rag-ask")
    page.wait_for_selector("#rag-answer[data-cited]", timeout=300_000)  # a loaded CI machine
    assert "March" in page.inner_text("#rag-answer")
    assert "launch-plan.txt" in page.inner_text("#rag-sources")
    cite = page.locator("#rag-answer button.cite")
    (cite.first if cite.count() else page.locator("#rag-sources button").first).click()
    assert "Kourou" in page.inner_text("#rag-passage")
    shot(page, "documents")


def test_transcribe_an_uploaded_wav(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    with live_server.api() as api:
        speech = api.post(
            "/v1/audio/speech",
            json={"model": "en_us-joe-medium", "input": "Hello world. The weather is nice today."},
        )
        assert speech.status_code == 200, speech.text
    wav = tmp_path / "hello.wav"
    wav.write_bytes(speech.content)
    page.goto(live_server.url + "/#media")
    page.locator("#stt-model option").first.wait_for(state="attached")
    page.select_option("#stt-model", "whisper-tiny.en")
    page.set_input_files("#stt-file", str(wav))
    page.locator("#stt-output .transcript").wait_for()
    text = page.inner_text("#stt-output .transcript").lower()
    assert "hello world" in text and "weather" in text
    assert page.locator("#stt-output .segments li").count() >= 1
    shot(page, "speech")


def test_start_an_eval_run_watch_it_and_see_its_plot(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/#eval")
    page.locator("#eval-model option").first.wait_for(state="attached")
    page.select_option("#eval-model", "smollm2-135m-instruct")
    page.fill("#eval-benchmarks", "medqa")
    page.fill("#eval-limit", "4")
    page.click("#eval-start")
    page.locator("#eval-job .progress[data-percent='100']").wait_for()
    chart = page.locator("#eval-chart[src^='blob:']")
    chart.wait_for()
    page.wait_for_timeout(300)
    assert chart.evaluate("img => img.naturalWidth") > 200
    report = page.inner_text("#eval-report")
    assert "medqa" in report and "4/4" in report
    with live_server.api() as api:
        runs = api.get("/terminus/v1/eval/runs").json()["data"]
        assert [(r["items_done"], r["items_planned"]) for r in runs] == [(4, 4)]
        busy = api.post("/terminus/v1/eval/runs", json={"model": "nosuch", "benchmarks": ["medqa"]})
        assert busy.status_code == 404
    shot(page, "eval")


def test_every_page_renders_at_phone_width(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_init_script(f"localStorage.setItem('terminus.apiKey', '{KEY}')")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for name in ("chat", "models", "documents", "media", "eval", "peers"):
        page.goto(f"{live_server.url}/#{name}")
        page.wait_for_selector(f".page[data-page='{name}']")
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"{name} scrolls sideways at phone width ({width}px)"
        shot(page, f"phone-{name}")
    context.close()
    assert not errors, errors
