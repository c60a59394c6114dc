"""Terminus extension: OCR and translation over HTTP (OpenAI has no such endpoints).

``POST /terminus/v1/ocr`` takes a multipart ``file`` (and optional ``model``) and answers
the text with its blocks; ``POST /terminus/v1/translate`` takes JSON ``{text, target,
source?, model?}``. Both run on a worker thread inside the server's concurrency bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.datastructures import UploadFile

from terminus.server.errors import APIError
from terminus.server.guard import accepts_form_data
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import server_state

MAX_IMAGE_BYTES = 20 * 1024 * 1024


class TranslateBody(Wire):
    text: str = Field(min_length=1, max_length=20_000)
    target: str = Field(min_length=2, max_length=16)
    source: str | None = None
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)


def add_tool_routes(router: APIRouter) -> None:
    @router.post("/terminus/v1/ocr")
    @accepts_form_data
    async def ocr(request: Request) -> dict[str, Any]:
        async with request.form() as form:  # closes the upload's spool
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise APIError(
                    400,
                    "send the image in the 'file' field",
                    code="invalid_parameter",
                    param="file",
                )
            data = await upload.read(MAX_IMAGE_BYTES + 1)
            model = form.get("model")
        if len(data) > MAX_IMAGE_BYTES:
            raise APIError(413, "the image is larger than 20 MiB", code="request_too_large")
        state = server_state(request)
        slot = state.admit()
        try:
            result = await asyncio.to_thread(
                state.client.ocr, image=data, model=model if isinstance(model, str) else None
            )
        finally:
            slot.release()
        return {
            "model": result.model,
            "text": result.text,
            "width": result.width,
            "height": result.height,
            "blocks": [b.model_dump(mode="json") for b in result.blocks],
            "seconds": round(result.total_s, 3),
        }

    @router.post("/terminus/v1/translate")
    async def translate(request: Request) -> dict[str, Any]:
        body = await parse_body(request, TranslateBody)
        state = server_state(request)
        slot = state.admit()
        try:
            result = await asyncio.to_thread(
                state.client.translate,
                body.text,
                body.target,
                body.source,
                model=body.model,
                max_tokens=body.max_tokens,
            )
        finally:
            slot.release()
        return result.model_dump(mode="json")
