"""POST /v1/images/generations on the built SDXS model, in-process over ASGI."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
from imagekit import MODEL, SMALL

from terminus import Terminus
from terminus.server.app import create_app
from terminus.server.settings import ServerSettings

BODY = {"model": MODEL, "prompt": "a lighthouse", "size": "64x64", "steps": 1, "seed": 4}


async def post(client: Terminus, body: dict[str, object]) -> httpx.Response:
    app = create_app(client, ServerSettings(access_log=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            return await http.post("/v1/images/generations", json=body, timeout=300)


async def test_b64_json_pngs_match_the_client_result(image_client: Terminus) -> None:
    from PIL import Image

    response = await post(image_client, {**BODY, "n": 2, "response_format": "b64_json"})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert len(payload["data"]) == 2 and payload["terminus"]["seed"] == 4
    first = Image.open(io.BytesIO(base64.b64decode(payload["data"][0]["b64_json"])))
    assert (first.mode, first.size) == ("RGB", (64, 64))
    direct = image_client.generate_image("a lighthouse", model=MODEL, seed=4, **SMALL).result()
    assert np.array_equal(np.asarray(first), np.asarray(direct.image.to_pil()))


async def test_bad_requests_are_openai_shaped_errors(image_client: Terminus) -> None:
    bad_size = await post(image_client, {**BODY, "size": "large"})
    assert bad_size.status_code == 400
    assert bad_size.json()["error"]["param"] == "size"
    urls = await post(image_client, {**BODY, "response_format": "url"})
    assert urls.status_code == 400 and "b64_json" in urls.json()["error"]["message"]
    odd = await post(image_client, {**BODY, "size": "100x100"})
    assert odd.status_code == 400 and "multiple of 8" in odd.json()["error"]["message"]
    unknown = await post(image_client, {**BODY, "model": "no-such-model"})
    assert unknown.status_code == 404
