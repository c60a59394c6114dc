"""The HTTP endpoints the web app uses, in-process on fake models: the page and its assets,
the catalog, pulls with progress, conversations on disk, evaluation jobs, the node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from serverkit import assert_error, running

from terminus.client.sync import Terminus


async def test_the_page_and_assets_are_served_with_a_strict_policy(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await api.get("/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await api.get("/ui/style.css")).headers["content-type"].startswith("text/css")
    for bad in ("/ui/nosuch.js", "/ui/..%2Fapp.py", "/ui/index.html"):
        assert (await api.get(bad)).status_code == 404, bad


async def test_the_page_is_open_but_its_data_needs_the_key(make_app: Any) -> None:
    async with running(make_app(api_keys=frozenset({"k1"}))) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/ui/chat.js")).status_code == 200
        assert_error(await http.get("/terminus/v1/catalog"), 401)
        assert_error(await http.get("/terminus/v1/conversations"), 401)
        ok = await http.get("/terminus/v1/catalog", headers={"Authorization": "Bearer k1"})
        assert ok.status_code == 200


async def test_catalog_lists_every_model_with_its_state(api: httpx.AsyncClient) -> None:
    body = (await api.get("/terminus/v1/catalog")).json()
    models = {m["id"]: m for m in body["data"]}
    assert {"fake-chat", "fake-embed", "smollm2-135m-instruct"} <= set(models)
    chat = models["fake-chat"]
    assert chat["capability"] == "chat" and isinstance(chat["fits"], bool)
    assert chat["loaded"] is False and body["loaded"] == []
    assert models["smollm2-135m-instruct"]["size"] > 90_000_000


async def test_pull_streams_progress_then_success(api: httpx.AsyncClient) -> None:
    async with api.stream("POST", "/terminus/v1/models/fake-chat/pull") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        events = [json.loads(line) async for line in response.aiter_lines() if line]
    assert events[0]["status"] == "pulling" and events[0]["model"] == "fake-chat"
    assert events[-1]["status"] == "success"
    verified = (await api.post("/terminus/v1/models/fake-chat/verify")).json()
    assert verified["id"] == "fake-chat"
    assert_error(await api.post("/terminus/v1/models/nosuch/pull"), 404)
    assert_error(await api.delete("/terminus/v1/models/nosuch"), 404)


async def test_conversations_round_trip_on_disk(
    api: httpx.AsyncClient, fake_client: Terminus
) -> None:
    convo = {
        "title": "Paris",
        "model": "fake-chat",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    }
    saved = await api.put("/terminus/v1/conversations/c1", json=convo)
    assert saved.status_code == 200 and saved.json()["updated_at"] > 0
    listed = (await api.get("/terminus/v1/conversations")).json()["data"]
    assert [(c["id"], c["title"], c["messages"]) for c in listed] == [("c1", "Paris", 2)]
    again = (await api.get("/terminus/v1/conversations/c1")).json()
    assert again["messages"] == convo["messages"] and again["system"] == "Be brief."
    folder: Path = fake_client.home / "conversations"
    assert sorted(p.name for p in folder.iterdir()) == ["c1.json"]  # no temporary file left
    assert (await api.delete("/terminus/v1/conversations/c1")).json()["deleted"] is True
    assert_error(await api.get("/terminus/v1/conversations/c1"), 404)
    assert_error(await api.get("/terminus/v1/conversations/bad.id"), 400)
    bad = await api.put(
        "/terminus/v1/conversations/c2", json={"messages": [{"role": "x", "content": ""}]}
    )
    assert_error(bad, 400)


async def test_eval_jobs_refuse_unknown_models_and_jobs(api: httpx.AsyncClient) -> None:
    body = {"model": "nosuch", "benchmarks": ["medqa"]}
    assert_error(await api.post("/terminus/v1/eval/runs", json=body), 404)
    assert_error(await api.post("/terminus/v1/eval/runs", json={"model": "fake-chat"}), 400)
    assert_error(await api.get("/terminus/v1/eval/jobs/evaljob-9"), 404)
    assert (await api.get("/terminus/v1/eval/runs")).json() == {"object": "list", "data": []}
    assert_error(await api.get("/terminus/v1/eval/runs/nosuch"), 404)
    assert_error(await api.get("/terminus/v1/eval/runs/..%2F..%2Fetc"), 404)


async def test_tools_and_documents_refuse_bad_input(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/terminus/v1/ocr", files={"other": ("x.png", b"x")}), 400)
    assert_error(await api.post("/terminus/v1/translate", json={"text": ""}), 400)
    missing = await api.post("/terminus/v1/rag/workspaces/nosuch/ask", json={"question": "q"})
    assert_error(missing, 404)
    none = await api.post("/terminus/v1/rag/workspaces/ws/documents", files={"x": ("a.txt", b"a")})
    assert_error(none, 400)


async def test_node_identity(api: httpx.AsyncClient) -> None:
    node = (await api.get("/terminus/v1/node")).json()
    assert node["available"] is True and len(node["node_id"]) == 64
    assert node["peers"] == []
