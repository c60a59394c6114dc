"""The web app: first load of ``/`` (bytes and time to interactive in headless Chromium), and
the time to first *visible* token in the page against the same request through the
``openai`` client, on one live ``terminus serve`` with SmolLM2.

    python bench/bench_webapp.py --rounds 6

Rounds alternate which side goes first; the ratio's spread is printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PROMPT = "Name three colours."
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1")
    command = [sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port),
               "-m", "smollm2", "--threads", "1", "--parallel", "1"]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready")


def first_load(browser: Any, url: str) -> tuple[int, float]:
    context = browser.new_context()
    page = context.new_page()
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.url.startswith(url) else None)
    started = time.perf_counter()
    page.goto(url + "/#chat")
    page.locator("#chat-model option").first.wait_for(state="attached")
    interactive = time.perf_counter() - started
    context.close()
    return sum(sizes), interactive


def page_ttft(page: Any) -> float:
    page.click("#chat-new")  # the same one-message prompt as the client's, every round
    page.evaluate("() => performance.clearMarks()")
    page.fill("#chat-input", PROMPT)
    page.click("#chat-send")
    page.locator(".message.assistant.streaming").wait_for(state="detached")
    page.wait_for_timeout(50)
    marks = page.evaluate(
        "() => ['terminus:send', 'terminus:first-token']"
        ".map(n => performance.getEntriesByName(n)[0].startTime)"
    )
    return float(marks[1] - marks[0]) / 1000


def client_ttft(client: Any) -> float:
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": PROMPT}],
        stream=True, temperature=0, top_p=0.95, max_tokens=8,
    )  # fmt: skip
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    assert first is not None
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    import openai
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="bench-webapp-"))
    process, url = start_server(home)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS
            )
            size, interactive = first_load(browser, url)
            print(f"first load of /: {size / 1024:.1f} KiB, interactive in {interactive * 1000:.0f} ms"
                  f"  (load average {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
            page = browser.new_page()
            page.goto(url + "/#chat")
            page.locator("#chat-model option").first.wait_for(state="attached")
            page.click(".settings summary")
            page.fill("#chat-temperature", "0")
            page.fill("#chat-max-tokens", "8")
            client_ttft(client)  # warm both paths once
            page_ttft(page)
            added: list[float] = []
            for round_ in range(args.rounds):
                order = ("page", "client") if round_ % 2 == 0 else ("client", "page")
                times = {name: page_ttft(page) if name == "page" else client_ttft(client)
                         for name in order}  # fmt: skip
                added.append(times["page"] - times["client"])
                print(f"round {round_ + 1} ({order[0]} first): page {times['page'] * 1000:.1f} ms,"
                      f" openai client {times['client'] * 1000:.1f} ms,"
                      f" added {added[-1] * 1000:+.1f} ms", flush=True)  # fmt: skip
            browser.close()
        spread = statistics.stdev(added) * 1000 if len(added) > 1 else 0.0
        print(f"added time to first visible token: median {statistics.median(added) * 1000:+.1f} ms"
              f" (stdev {spread:.1f} ms over {len(added)} rounds;"
              f" load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
