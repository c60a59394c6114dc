"""A Hub pull started over HTTP (the web app's Models page): NDJSON progress, then the model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from hub_fixture import FakeHub

from terminus import Terminus
from terminus.server import ServerSettings, create_app


async def test_pull_by_hub_name_streams_progress_and_pins(
    hub: FakeHub, isolated_home: Path, smollm2_gguf: Path
) -> None:
    hub.add_file("someone/Tiny-GGUF", "tiny-Q4_K_M.gguf", smollm2_gguf)
    with Terminus() as client:
        app = create_app(client, ServerSettings())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                body = {"model": "hf://someone/Tiny-GGUF"}
                async with http.stream("POST", "/terminus/v1/pull", json=body) as response:
                    events = [json.loads(line) async for line in response.aiter_lines() if line]
                missing = await http.post("/terminus/v1/pull", json={"model": "hf://someone/nope"})
                lines = [json.loads(line) for line in missing.text.splitlines() if line]
        statuses = [e["status"] for e in events]
        assert statuses[0] == "pulling" and statuses[-1] == "success", events
        assert any(e.get("total") == smollm2_gguf.stat().st_size for e in events[1:-1])
        card = client.models.get("hf://someone/Tiny-GGUF")
        assert (
            card.files[0].sha256 == hub.repos["someone/Tiny-GGUF"].files["tiny-Q4_K_M.gguf"].sha256
        )
        assert lines[-1]["status"] == "error" and "someone/nope" in lines[-1]["error"]
