"""POST /v1/images/generations: OpenAI's image API over ``Terminus.generate_image``.

Only ``response_format: "b64_json"`` (PNG bytes, base64): this server keeps no files
to hand out URLs for. Besides OpenAI's fields (``model``, ``prompt``, ``n``, ``size``)
it accepts stable-diffusion's own: ``negative_prompt``, ``steps``, ``cfg_scale``,
``seed``, ``sampler``, ``scheduler``. A client that disconnects cancels the generation.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from terminus.client.image import ImageStream
from terminus.errors import CapabilityError
from terminus.server.errors import invalid
from terminus.server.middleware import access_record
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import server_state
from terminus.types.common import Capability, model_kind
from terminus.types.image import ImageResult

DISCONNECT_POLL_S = 0.25


class ImageGenerationRequest(Wire):
    model: str
    prompt: str = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=8)
    size: str | None = None  # "WIDTHxHEIGHT"
    response_format: str | None = None
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    sampler: str | None = None
    scheduler: str | None = None


def parse_size(size: str | None) -> dict[str, int]:
    if size is None:
        return {}
    width, sep, height = size.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise invalid("size", f"size must look like 512x512, not {size!r}")
    return {"width": int(width), "height": int(height)}


def png_base64(result: ImageResult) -> list[str]:
    encoded = []
    for image in result.images:
        buffer = io.BytesIO()
        image.to_pil().save(buffer, format="PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return encoded


def add_image_routes(router: APIRouter) -> None:
    @router.post("/v1/images/generations", response_model=None)
    async def generations(request: Request) -> JSONResponse:
        body = await parse_body(request, ImageGenerationRequest)
        if body.response_format not in (None, "b64_json"):
            raise invalid("response_format", "only response_format 'b64_json' is supported")
        state = server_state(request)
        record = access_record(request)
        card = await asyncio.to_thread(state.client.models.get, body.model)  # unknown: 404
        if card.capability != Capability.IMAGE:
            raise CapabilityError(f"{card.id} is {model_kind(card.capability)}, not an image model")
        record.model = card.id
        params: dict[str, Any] = {
            "negative_prompt": body.negative_prompt,
            "steps": body.steps,
            "cfg_scale": body.cfg_scale,
            "seed": body.seed,
            "sampler": body.sampler,
            "scheduler": body.scheduler,
            "count": body.n,
            **parse_size(body.size),
        }
        stream = state.client.generate_image(card.id, body.prompt, **params)  # validates
        slot = state.admit()
        try:
            await state.ensure_loaded(card.id)
            result, encoded = await _run(stream, request)
        finally:
            slot.release()
        return JSONResponse(
            {
                "created": int(time.time()),
                "data": [{"b64_json": data, "revised_prompt": body.prompt} for data in encoded],
                "terminus": result.stats.model_dump(),
            }
        )


async def _run(stream: ImageStream, request: Request) -> tuple[ImageResult, list[str]]:
    """Generate (and encode) in a thread; a disconnect cancels the generation."""

    def work() -> tuple[ImageResult, list[str]]:
        result = stream.result()
        return result, png_base64(result)

    task = asyncio.ensure_future(asyncio.to_thread(work))
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if not done and await request.is_disconnected():
            stream.cancel()
    return task.result()
