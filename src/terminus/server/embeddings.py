"""POST /v1/embeddings: vectors from an embedding model (``Terminus.embed``).

The vectors are L2-normalized (as OpenAI's are). ``encoding_format: "base64"`` sends
each vector as the base64 of its little-endian float32 bytes; the openai Python SDK
asks for that by default and decodes it. The embedding and the JSON encoding of the
answer (both CPU work, the JSON large for big batches) run in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.client.sync import Terminus
from terminus.models.card import ModelCard
from terminus.server.errors import APIError, invalid
from terminus.server.middleware import access_record
from terminus.server.schemas import EmbeddingRequest, parse_body
from terminus.server.state import server_state
from terminus.types import Embeddings
from terminus.types.common import Capability

#: Texts in one request, as in OpenAI's API.
MAX_INPUTS = 2048


def embedding_inputs(body: EmbeddingRequest) -> list[str]:
    """The texts to embed; token ids, empty input and empty strings are 400s."""
    raw = body.input
    texts: list[Any] = [raw] if isinstance(raw, str) else list(raw)
    if not texts:
        raise invalid("input", "input must not be empty: send a string or a list of strings")
    if not all(isinstance(text, str) for text in texts):
        raise APIError(
            400,
            "token-id input is not supported by this server: send text "
            "(a string or a list of strings)",
            code="unsupported_parameter",
            param="input",
        )
    if len(texts) > MAX_INPUTS:
        raise invalid("input", f"input has {len(texts)} texts; at most {MAX_INPUTS} per request")
    for i, text in enumerate(texts):
        if not text:
            where = "input" if isinstance(raw, str) else f"input[{i}]"
            raise invalid("input", f"{where} is an empty string; every text needs content")
    return texts


def wrong_dimensions(card: ModelCard, asked: int, size: int) -> APIError:
    return APIError(
        400,
        f"{card.id} makes {size}-dimension vectors; dimensions={asked} "
        "(shortened vectors) is not supported by this server",
        code="unsupported_parameter",
        param="dimensions",
    )


def embedding_object(index: int, vector: Any, encoding: str) -> dict[str, Any]:
    value: str | list[float]
    if encoding == "base64":
        value = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    else:
        value = vector.tolist()
    return {"object": "embedding", "index": index, "embedding": value}


def response_body(result: Embeddings, model: str, encoding: str) -> bytes:
    body = {
        "object": "list",
        "data": [embedding_object(i, v, encoding) for i, v in enumerate(result.vectors)],
        "model": model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
    # as Starlette's JSONResponse renders, but here in the worker thread
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def embed(
    client: Terminus,
    card: ModelCard,
    texts: list[str],
    encoding: str,
    dimensions: int | None,
) -> tuple[Embeddings, bytes]:
    """Runs in a worker thread: the vectors and the rendered answer."""
    result = client.embed(texts, model=card.id)
    if dimensions is not None and dimensions != result.dimensions:
        raise wrong_dimensions(card, dimensions, result.dimensions)
    return result, response_body(result, card.id, encoding)


def add_embedding_routes(router: APIRouter) -> None:
    @router.post("/v1/embeddings", response_model=None)
    async def embeddings(request: Request) -> Response:
        body = await parse_body(request, EmbeddingRequest)
        state = server_state(request)
        record = access_record(request)
        record.model = body.model
        texts = embedding_inputs(body)
        card = await state.resolve(body.model, Capability.EMBED)
        record.model = card.id
        asked, declared = body.dimensions, card.defaults.get("dimensions")
        if asked is not None and declared is not None and asked != int(declared):
            raise wrong_dimensions(card, asked, int(declared))  # before any work
        encoding = body.encoding_format or "float"
        slot = state.admit()
        try:
            await state.ensure_loaded(card.id)
            result, content = await asyncio.to_thread(
                embed, state.client, card, texts, encoding, body.dimensions
            )
        finally:
            slot.release()
        record.prompt_tokens = result.prompt_tokens
        return Response(content, media_type="application/json")
