"""Draining in process (fake engine): what SIGTERM triggers under ``terminus serve``."""

from __future__ import annotations

import asyncio
from typing import Any

from serverkit import assert_error, chat_body, running, sse_events


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_drain_finishes_short_requests_and_stops_long_ones(make_app: Any) -> None:
    app = make_app()
    state = app.state.terminus
    async with running(app) as http:
        # fake-slow writes 400 words at 10 ms each: it outlives a 0.2 s grace period
        streamed = asyncio.ensure_future(
            http.post("/v1/chat/completions", json=chat_body("x", model="fake-slow", stream=True))
        )
        plain = asyncio.ensure_future(
            http.post("/v1/chat/completions", json=chat_body("x", model="fake-slow"))
        )
        await _until(lambda: state.active == 2)
        drain = asyncio.ensure_future(state.drain(grace_s=0.2))
        await _until(lambda: state.draining)
        # while draining: new work is refused, the probes say so
        refused = await http.post("/v1/chat/completions", json=chat_body())
        assert_error(refused, 503, "server_shutting_down")
        assert refused.headers["retry-after"] == "5" and refused.headers["connection"] == "close"
        ready = await http.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        health = (await http.get("/health")).json()
        assert health["draining"] is True and health["requests_in_flight"] == 2
        assert await drain == 2
        events = sse_events((await streamed).text)
        assert events[-1] == "[DONE]"
        assert events[-2]["error"]["code"] == "server_shutting_down"
        assert events[-2]["error"]["type"] == "server_error"
        assert any(e["choices"][0]["delta"].get("content") for e in events[1:-2])
        assert_error(await plain, 503, "server_shutting_down")
        assert state.active == 0 and not state.slots


async def test_drain_with_nothing_in_flight_is_immediate(make_app: Any) -> None:
    app = make_app()
    state = app.state.terminus
    async with running(app) as http:
        done = await http.post("/v1/chat/completions", json=chat_body(stream=True))
        assert sse_events(done.text)[-1] == "[DONE]"
        async with asyncio.timeout(10):  # the 30 s grace period is not waited out
            assert await state.drain(grace_s=30) == 0
        assert_error(
            await http.post("/v1/embeddings", json={"model": "fake-embed", "input": "x"}), 503
        )
