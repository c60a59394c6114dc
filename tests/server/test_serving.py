"""Auth, CORS, concurrency (429), disconnect → cancel, readiness and the access log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from serverkit import assert_error, chat_body, running, sse_events

from terminus.cli.main import cli
from terminus.client.sync import Terminus
from terminus.errors import InvalidParameterError
from terminus.server import ServerSettings, check_exposure, create_app, resolve_api_keys
from terminus.server.settings import is_loopback

# --- auth --------------------------------------------------------------------------------


async def test_api_keys(make_app: Any) -> None:
    async with running(make_app(api_keys=frozenset({"key-one", "key-two"}))) as http:
        error = assert_error(await http.get("/v1/models"), 401, "invalid_api_key")
        assert "missing" in error["message"]
        response = await http.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert "incorrect" in assert_error(response, 401, "invalid_api_key")["message"]
        assert response.headers["www-authenticate"] == "Bearer"
        response = await http.post(
            "/v1/chat/completions", json=chat_body(), headers={"Authorization": "Basic key-one"}
        )
        assert_error(response, 401, "invalid_api_key")
        for key in ("key-one", "key-two"):
            response = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200
        assert_error(await http.get("/terminus/v1/models/fake-chat"), 401)
        # probes stay open for load balancers
        health = (await http.get("/health")).json()
        assert health == {"status": "ok", "requests_in_flight": 0, "draining": False}
        assert (await http.get("/ready")).status_code == 200


async def test_no_keys_means_no_auth(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/models")).status_code == 200


def test_keys_from_flags_env_and_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\nfile-key\n\n  other-key  \n")
    keys = resolve_api_keys(
        ["flag-key", " "], env={"TERMINUS_API_KEYS": "env-a, env-b,,"}, keys_file=keys_file
    )
    assert keys == {"flag-key", "env-a", "env-b", "file-key", "other-key"}
    env = {"TERMINUS_API_KEYS_FILE": str(keys_file)}
    assert resolve_api_keys([], env=env) == {"file-key", "other-key"}
    assert resolve_api_keys([], env={}) == frozenset()
    with pytest.raises(InvalidParameterError, match="cannot read"):
        resolve_api_keys([], env={}, keys_file=tmp_path / "missing")


def test_exposure_check() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_exposure(ServerSettings(host=host))
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.com"):
        assert not is_loopback(host), host
        with pytest.raises(InvalidParameterError, match="without an API key"):
            check_exposure(ServerSettings(host=host))
        check_exposure(ServerSettings(host=host, api_keys=frozenset({"k"})))


def test_serve_refuses_to_expose_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERMINUS_API_KEYS", raising=False)
    monkeypatch.delenv("TERMINUS_API_KEYS_FILE", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in result.output
    result = CliRunner().invoke(cli, ["serve", "--model", "no-such-model"])
    assert result.exit_code == 3 and "unknown model" in result.output
    result = CliRunner().invoke(cli, ["serve", "--max-body-bytes", "lots"])
    assert result.exit_code == 2


# --- CORS --------------------------------------------------------------------------------


async def test_cors(make_app: Any) -> None:
    app = make_app(cors_origins=("http://localhost:3000",), api_keys=frozenset({"k"}))
    async with running(app) as http:
        preflight = await http.options(
            "/v1/chat/completions",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200  # no key needed for the preflight
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        response = await http.get(
            "/v1/models", headers={"Origin": "http://localhost:3000", "Authorization": "Bearer k"}
        )
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        denied = await http.get("/v1/models", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in denied.headers


async def test_no_cors_headers_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/models", headers={"Origin": "http://localhost:3000"})
    assert "access-control-allow-origin" not in response.headers


# --- concurrency -------------------------------------------------------------------------


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_excess_requests_get_429(make_app: Any) -> None:
    app = make_app(max_concurrent=1)
    state = app.state.terminus
    async with running(app) as http:
        slow = chat_body("x", model="fake-slow", max_tokens=30, stream=True)
        first = asyncio.create_task(http.post("/v1/chat/completions", json=slow))
        await _wait_for(lambda: state.active == 1)
        busy = await http.post("/v1/chat/completions", json=chat_body())
        error = assert_error(busy, 429, "rate_limit_exceeded")
        assert error["type"] == "rate_limit_error"
        assert busy.headers["retry-after"] == "1"
        assert (await http.get("/v1/models")).status_code == 200  # only generation is bounded
        assert (await first).status_code == 200
        assert state.active == 0
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200


async def test_rejected_requests_do_not_hold_a_slot(make_app: Any) -> None:
    app = make_app(max_concurrent=1)
    async with running(app) as http:
        for _ in range(3):
            await http.post("/v1/chat/completions", json=chat_body(model="nope"))
            await http.post(
                "/v1/chat/completions", json=chat_body(" ".join(["w"] * 300), stream=True)
            )
        assert app.state.terminus.active == 0
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200


async def test_requests_run_in_parallel(make_app: Any) -> None:
    app = make_app(max_concurrent=4)
    state = app.state.terminus
    async with running(app) as http:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, state.active)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        body = chat_body("x", model="fake-slow", max_tokens=20, stream=True)
        responses = await asyncio.gather(
            *(http.post("/v1/chat/completions", json=body) for _ in range(3))
        )
        watcher.cancel()
    assert peak == 3
    for response in responses:
        events = sse_events(response.text)
        assert events[-2]["choices"][0]["finish_reason"] == "length"


# --- disconnect → cancel -----------------------------------------------------------------


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


@pytest.mark.parametrize("stream", [True, False])
async def test_disconnect_cancels_the_generation(
    make_app: Any, fake_client: Terminus, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    """fake-slow takes 4 s for its 400 words; a client leaving stops it at once."""
    app = make_app()
    body = json.dumps(chat_body("x", model="fake-slow", stream=stream)).encode()
    delivered = False
    leave = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 4:  # headers and three events
            leave.set()

    async with app.router.lifespan_context(app):
        started = time.monotonic()
        if not stream:
            asyncio.get_running_loop().call_later(0.2, leave.set)
        with caplog.at_level(logging.INFO, logger="terminus.server"):
            await asyncio.wait_for(app(_scope("/v1/chat/completions"), receive, send), 3)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert app.state.terminus.active == 0
    # the engine lets go of the model right after its last event
    await _wait_for(lambda: all(m.active_requests == 0 for m in fake_client.loaded_models()), 1)
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "terminus.server"]
    assert line["finish_reason"] == "cancelled"
    assert 0 < line["completion_tokens"] < 100


# --- readiness ---------------------------------------------------------------------------


async def test_ready_once_preloaded(make_app: Any, fake_client: Terminus) -> None:
    app = make_app(preload=("fake-chat",))
    async with running(app) as http:
        assert (await http.get("/health")).status_code == 200
        await _wait_for(lambda: app.state.terminus.ready)
        response = await http.get("/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "models": {"fake-chat": {"status": "loaded"}}}
    assert [m.id for m in fake_client.loaded_models()] == ["fake-chat"]


async def test_not_ready_while_loading_or_after_a_failed_load(fake_client: Terminus) -> None:
    app = create_app(fake_client, ServerSettings(preload=("fake-chat",)))
    assert app.state.terminus.ready  # nothing to wait for before startup...
    fake_client.manager.budget_bytes = 10  # fake models need 1024 bytes: the load fails
    async with running(app) as http:
        state = app.state.terminus
        assert not state.ready
        await _wait_for(lambda: state.preloads["fake-chat"].status != "loading")
        response = await http.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "failed"
        assert "memory budget" in body["models"]["fake-chat"]["error"]
        assert (await http.get("/health")).status_code == 200


# --- access log --------------------------------------------------------------------------


async def test_access_log_lines(api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="terminus.server"):
        await api.post("/v1/chat/completions", json=chat_body("one two"))
        await api.post("/v1/chat/completions", json=chat_body("a b c", stream=True))
        await api.post("/v1/chat/completions", json=chat_body(model="nope"))
        await api.get("/health")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "terminus.server"]
    assert len(lines) == 4
    chat, streamed, missing, health = lines
    assert chat["method"] == "POST" and chat["path"] == "/v1/chat/completions"
    assert chat["status"] == 200 and chat["model"] == "fake-chat" and chat["stream"] is False
    assert (chat["prompt_tokens"], chat["completion_tokens"]) == (2, 2)
    assert chat["finish_reason"] == "stop" and chat["duration_ms"] >= 0
    assert streamed["stream"] is True and streamed["completion_tokens"] == 3
    assert missing["status"] == 404 and missing["model"] == "nope"
    assert health == {
        "method": "GET",
        "path": "/health",
        "status": 200,
        "duration_ms": health["duration_ms"],
    }


async def test_access_log_can_be_off(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="terminus.server"):
        async with running(make_app(access_log=False)) as http:
            await http.post("/v1/chat/completions", json=chat_body())
    assert not [r for r in caplog.records if r.name == "terminus.server"]


def test_apps_do_not_share_state(fake_client: Terminus) -> None:
    one = create_app(fake_client, ServerSettings(max_concurrent=1))
    two = create_app(fake_client, ServerSettings(max_concurrent=2))
    assert one.state.terminus is not two.state.terminus
    one.state.terminus.admit()
    assert two.state.terminus.active == 0
