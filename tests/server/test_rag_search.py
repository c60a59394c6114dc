"""The /terminus/v1 RAG search extension, over a workspace built with the fake embedder."""

from __future__ import annotations

import httpx

from terminus import Terminus
from terminus.rag import open_workspace


def _workspace(client: Terminus) -> None:
    with open_workspace(client, "pets", model="fake-embed", create=True) as ws:
        ws.ingest_text(
            "Cats chase mice and sleep all day.", source="cats.txt", metadata={"kind": "feline"}
        )
        ws.ingest_text(
            "Dogs fetch sticks and guard the house.", source="dogs.txt", metadata={"kind": "canine"}
        )


async def test_search_returns_ranked_chunks_with_sources(
    api: httpx.AsyncClient, fake_client: Terminus
) -> None:
    _workspace(fake_client)
    r = await api.post(
        "/terminus/v1/rag/workspaces/pets/search", json={"query": "what do dogs fetch", "top_k": 2}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fake-embed" and body["workspace"] == "pets"
    assert [hit["source"] for hit in body["data"]][0] == "dogs.txt"
    first = body["data"][0]
    assert first["text"].startswith("Dogs fetch") and "position" in first
    assert body["data"][0]["score"] >= body["data"][1]["score"]


async def test_search_filter_and_listing(api: httpx.AsyncClient, fake_client: Terminus) -> None:
    _workspace(fake_client)
    r = await api.post(
        "/terminus/v1/rag/workspaces/pets/search",
        json={"query": "dogs", "filter": {"kind": "feline"}},
    )
    assert [hit["source"] for hit in r.json()["data"]] == ["cats.txt"]
    response = await api.get("/terminus/v1/rag/workspaces")
    listing = response.json()
    assert [w["name"] for w in listing["data"]] == ["pets"]
    assert listing["data"][0]["documents"] == 2
    # where the files live is not the caller's business: no path, absolute or not
    assert "path" not in listing["data"][0]
    assert str(fake_client.home) not in response.text


async def test_missing_workspace_is_404_in_openai_shape(api: httpx.AsyncClient) -> None:
    r = await api.post("/terminus/v1/rag/workspaces/nope/search", json={"query": "x"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "workspace_not_found"


async def test_bad_search_request_is_400(api: httpx.AsyncClient, fake_client: Terminus) -> None:
    _workspace(fake_client)
    r = await api.post("/terminus/v1/rag/workspaces/pets/search", json={"query": "", "top_k": 0})
    assert r.status_code == 400
    assert "error" in r.json()
