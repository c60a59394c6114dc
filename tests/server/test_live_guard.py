"""A live keyless ``terminus serve`` on SmolLM2, probed over real HTTP as a web page would.

The probes are the ones that once succeeded: DNS rebinding (a foreign ``Host``), JSON
sent as a cross-site "simple request", a foreign ``Origin``. The official ``openai``
client and a same-origin page keep working. Then SIGTERM during a stream: the stream
ends with an error event and ``[DONE]``, new requests get 503, nothing is logged as a
traceback.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from serverkit import LiveServer, live_server

pytestmark = pytest.mark.real

MODEL = "smollm2"
CHAT = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hi."},
    ],
    "max_tokens": 8,
    "temperature": 0,
}
SERVE_ARGS = ("--model", MODEL, "--context-length", "1024", "--parallel", "2", "--threads", "1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("guard-home")
    env = {"TERMINUS_ALLOWED_HOSTS": "*.example.test"}
    try:
        with live_server(home, *SERVE_ARGS, "--allowed-host", "my-box.lan", env=env) as live:
            yield live
    finally:
        shutil.rmtree(home, ignore_errors=True)  # the model blob is 100 MB


def _openai_error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"message", "type", "param", "code"}


def _curl(*args: str) -> tuple[int, dict[str, Any]]:
    """curl as a user types it; (status, JSON body)."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for the probes"
    out = subprocess.run(
        [curl, "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


def test_dns_rebinding_probe_is_refused(server: LiveServer) -> None:
    status, body = _curl("-H", "Host: attacker.example:8080", f"{server.url}/v1/models")
    assert status == 403
    _openai_error(body, "host_not_allowed")
    status, body = _curl(f"http://localhost:{server.port}/v1/models")
    assert status == 200 and body["data"]
    # names added with --allowed-host and TERMINUS_ALLOWED_HOSTS
    for host in ("my-box.lan", f"my-box.lan:{server.port}", "api.example.test"):
        response = httpx.get(f"{server.url}/v1/models", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)
    assert httpx.get(f"{server.url}/v1/models", headers={"Host": "other.lan"}).status_code == 403


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_cross_site_simple_requests_are_refused(server: LiveServer, content_type: str) -> None:
    """What a web page can send anywhere without a preflight: nothing runs."""
    for path, body in (
        ("/v1/chat/completions", CHAT),
        ("/terminus/v1/rag/workspaces/notes/search", {"query": "salary"}),
    ):
        status, answer = _curl(
            "-H",
            f"Content-Type: {content_type}",
            "--data-binary",
            json.dumps(body),
            server.url + path,
        )
        assert status == 415, (path, answer)
        _openai_error(answer, "unsupported_media_type")


def test_plain_curl_data_is_refused_with_a_hint(server: LiveServer) -> None:
    status, body = _curl("-d", json.dumps(CHAT), f"{server.url}/v1/chat/completions")
    assert status == 415
    assert "--json" in body["error"]["message"]
    status, body = _curl("--json", json.dumps(CHAT), f"{server.url}/v1/chat/completions")
    assert status == 200 and body["choices"][0]["message"]["content"]


def test_origins(server: LiveServer) -> None:
    url = f"{server.url}/v1/chat/completions"
    foreign = httpx.post(url, json=CHAT, headers={"Origin": "http://attacker.example"}, timeout=60)
    assert foreign.status_code == 403
    _openai_error(foreign.json(), "origin_not_allowed")
    same = httpx.post(url, json=CHAT, headers={"Origin": server.url}, timeout=60)
    assert same.status_code == 200, same.text
    assert same.json()["choices"][0]["message"]["content"]


def test_the_openai_client_still_works(server: LiveServer) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0) as client:
        assert any(m.id.startswith("smollm2") for m in client.models.list())
        reply = client.chat.completions.create(**CHAT)
        assert reply.choices[0].message.content
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- SIGTERM mid-stream ------------------------------------------------------------------


def test_sigterm_drains_streams_with_an_error_event_and_done(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    count = {
        **CHAT,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Count from 1 to 3000, one number per line."},
        ],
        "max_tokens": 3000,  # far longer than the 3 s grace period
    }
    args = ("--model", MODEL, "--context-length", "4096", "--parallel", "2", "--threads", "1")
    with live_server(tmp_path, *args, "--grace-period", "3") as live:
        url = f"{live.url}/v1/chat/completions"
        waiting: dict[str, httpx.Response] = {}

        def non_streamed() -> None:  # in flight too: it answers 503 when stopped
            waiting["response"] = httpx.post(url, json=count, timeout=60)

        events: list[str] = []
        with httpx.stream("POST", url, json={**count, "stream": True}, timeout=60) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    events.append(line.removeprefix("data: "))
                if len(events) == 3:
                    break
            other = threading.Thread(target=non_streamed)
            other.start()
            time.sleep(0.3)
            live.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            health = httpx.get(f"{live.url}/health", timeout=10)
            ready = httpx.get(f"{live.url}/ready", timeout=10)
            refused = httpx.post(url, json=CHAT, timeout=10)
            assert health.status_code == 200 and health.json()["draining"] is True
            assert ready.status_code == 503 and ready.json()["status"] == "draining"
            assert refused.status_code == 503
            _openai_error(refused.json(), "server_shutting_down")
            for line in lines:
                if line.startswith("data: "):
                    events.append(line.removeprefix("data: "))
        other.join(timeout=30)
        assert live.process.wait(timeout=30) == 0
    assert events[-1] == "[DONE]", events[-3:]
    last = json.loads(events[-2])
    _openai_error(last, "server_shutting_down")
    assert all("error" not in json.loads(e) for e in events[:-2])
    stopped = waiting["response"]
    assert stopped.status_code == 503, stopped.text
    _openai_error(stopped.json(), "server_shutting_down")
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log
    drained = [json.loads(x) for x in log.splitlines() if x.startswith('{"event":"drained"')]
    assert drained and drained[0]["stopped"] == 2 and drained[0]["in_flight"] == 0, log
