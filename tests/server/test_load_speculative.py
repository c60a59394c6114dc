"""The load endpoint passes speculative decoding and KV snapshot options to the model load."""

from __future__ import annotations

from typing import Any

import pytest
from serverkit import running

from terminus import Terminus


async def test_load_passes_speculative_options(
    make_app: Any, fake_client: Terminus, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    load = fake_client.load_model

    def spy(model: str | None = None, **options: Any) -> Any:
        seen.append(options)
        return load(model, **options)

    monkeypatch.setattr(fake_client, "load_model", spy)
    body = {"speculative": "draft", "draft_model": "small", "draft_max": 4, "kv_disk_cache": 64}
    async with running(make_app()) as http:
        reply = await http.post("/terminus/v1/models/fake-chat/load", json=body)
        assert reply.status_code == 200, reply.text
        plain = await http.post("/terminus/v1/models/fake-chat/load", json={})
        assert plain.status_code == 200
    assert {k: seen[0][k] for k in body} == body
    assert not set(body) & set(seen[1])  # nothing asked, nothing passed: the card decides
