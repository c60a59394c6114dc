"""/metrics (parsed with prometheus_client's parser), /docs, and the lifecycle endpoints."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serverkit import assert_error, chat_body, running


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_after_traffic(api: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await api.post("/v1/chat/completions", json=chat_body())).status_code == 200
    await api.post("/v1/responses", json={"model": "fake-chat", "input": "hi", "stream": True})
    await api.post("/v1/chat/completions", json=chat_body(model="nope"))
    reply = await api.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.text)
    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert _value(samples, "terminus_http_requests_total", **chat, status="200") == 2
    assert _value(samples, "terminus_http_requests_total", **chat, status="404") == 1
    route = {"route": "/v1/responses", "method": "POST", "status": "200"}
    assert _value(samples, "terminus_http_requests_total", **route) == 1
    assert _value(samples, "terminus_tokens_total", model="fake-chat", kind="completion") > 0
    assert _value(samples, "terminus_tokens_total", model="fake-chat", kind="prompt") > 0
    assert _value(samples, "terminus_time_to_first_token_seconds_count", model="fake-chat") == 3
    assert _value(samples, "terminus_models_loaded") == 1
    assert _value(samples, "terminus_model_memory_bytes", model="fake-chat") > 0
    assert _value(samples, "terminus_model_busy_slots", model="fake-chat") == 0
    assert _value(samples, "terminus_requests_in_flight") == 0
    assert _value(samples, "terminus_requests_max") == 16
    assert ("process_resident_memory_bytes", ()) in samples


async def test_unmatched_paths_share_one_label(api: httpx.AsyncClient) -> None:
    for path in ("/a", "/b", "/c"):
        await api.get(path)
    samples = _samples((await api.get("/metrics")).text)
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    assert _value(samples, "terminus_http_requests_total", **labels) == 3


async def test_docs_page_and_schema(make_app: Any) -> None:
    async with running(make_app(api_keys=frozenset({"k"}))) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
        asset = await http.get("/docs/assets/swagger-ui-bundle.js")
        assert asset.status_code == 200 and len(asset.content) > 100_000
        schema = (await http.get("/openapi.json")).json()
        assert "/v1/responses" in schema["paths"] and "/terminus/v1/ps" in schema["paths"]
        assert_error(await http.get("/metrics"), 401)  # data pages keep the key


async def test_load_ps_unload(api: httpx.AsyncClient) -> None:
    assert (await api.get("/terminus/v1/ps")).json()["models"] == []
    loaded = await api.post("/terminus/v1/models/fake-chat/load", json={"keep_alive": "10m"})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["id"] == "fake-chat" and loaded.json()["keep_alive_s"] == 600
    ps = (await api.get("/terminus/v1/ps")).json()
    [entry] = ps["models"]
    assert entry["id"] == "fake-chat" and entry["active_requests"] == 0
    assert 590 < entry["expires_in_s"] <= 600 and entry["expires_at"] is not None
    assert ps["requests_in_flight"] == 0
    reply = await api.post("/terminus/v1/models/fake-chat/unload")
    assert reply.json() == {"id": "fake-chat", "unloaded": True}
    assert (await api.post("/terminus/v1/models/fake-chat/unload")).json()["unloaded"] is False
    assert (await api.get("/terminus/v1/ps")).json()["models"] == []
    assert_error(await api.post("/terminus/v1/models/nope/load"), 404)
    bad = await api.post("/terminus/v1/models/fake-chat/load", json={"keep_alive": "later"})
    assert_error(bad, 400)


async def test_server_keep_alive_default(make_app: Any) -> None:
    async with running(make_app(keep_alive_s=0.0)) as http:
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
        for _ in range(100):
            if not (await http.get("/terminus/v1/ps")).json()["models"]:
                break
            await __import__("asyncio").sleep(0.05)
        assert (await http.get("/terminus/v1/ps")).json()["models"] == []
        facts = (await http.get("/terminus/v1/server")).json()
        assert facts["keep_alive_s"] == 0.0 and facts["resident"] is False


async def test_keep_alive_on_chat_and_completions(
    api: httpx.AsyncClient, text_capable: None
) -> None:
    reply = await api.post("/v1/chat/completions", json=chat_body(keep_alive="10m"))
    assert reply.status_code == 200, reply.text
    [entry] = (await api.get("/terminus/v1/ps")).json()["models"]
    assert entry["keep_alive_s"] == 600
    text = {"model": "fake-base", "prompt": "Once", "keep_alive": -1}
    assert (await api.post("/v1/completions", json=text)).status_code == 200
    base = [
        m for m in (await api.get("/terminus/v1/ps")).json()["models"] if m["id"] == "fake-base"
    ]
    assert base[0]["keep_alive_s"] is None and base[0]["expires_in_s"] is None  # for ever
    assert_error(await api.post("/v1/chat/completions", json=chat_body(keep_alive="later")), 400)
