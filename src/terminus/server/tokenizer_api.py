"""The model's tokenizer over HTTP, in vLLM's shapes (llama.cpp's field names accepted too).

``POST /tokenize`` ``{"model", "prompt", "add_special_tokens"}`` → ``{"tokens", "count",
"max_model_len"}``; ``POST /detokenize`` ``{"model", "tokens"}`` → ``{"prompt"}``;
``GET /tokenizer_info?model=`` → special tokens and chat template. lm-evaluation-harness
uses these ("remote" tokenizer) so that it needs no copy of the tokenizer: it then sends
token ids to /v1/completions. ``model`` may be left out when the server serves one model.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import JSONResponse, Response

from terminus.server.errors import invalid
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state


class TokenizeRequest(Wire):
    model: str | None = None
    prompt: str | None = None
    content: str | None = None  # llama.cpp's name
    add_special_tokens: bool | None = None
    add_special: bool | None = None  # llama.cpp's name


class DetokenizeRequest(Wire):
    model: str | None = None
    tokens: list[int] = Field(default_factory=list)


def _model(state: ServerState, name: str | None) -> str:
    return (
        name
        or (state.settings.preload[0] if state.settings.preload else "")
        or (state.client.default_model)
    )


def add_tokenizer_routes(router: APIRouter) -> None:
    @router.post("/tokenize", response_model=None)
    async def tokenize(request: Request) -> Response:
        body = await parse_body(request, TokenizeRequest)
        state = server_state(request)
        text = body.prompt if body.prompt is not None else body.content
        if text is None:
            raise invalid("prompt", "give the text to tokenize as `prompt`")
        # vLLM adds special tokens unless told not to; llama.cpp's `content` form does not
        add = body.add_special_tokens
        if add is None:
            add = body.add_special if body.add_special is not None else body.prompt is not None
        card = await state.resolve(_model(state, body.model))
        tokens = await state.aclient.tokenize(text, model=card.id, add_special=add)
        info = await state.aclient.tokenizer_info(card.id)
        return JSONResponse(
            {"tokens": tokens, "count": len(tokens), "max_model_len": info["model_max_length"]}
        )

    @router.post("/detokenize", response_model=None)
    async def detokenize(request: Request) -> Response:
        body = await parse_body(request, DetokenizeRequest)
        state = server_state(request)
        card = await state.resolve(_model(state, body.model))
        text = await state.aclient.detokenize(body.tokens, model=card.id)
        return JSONResponse({"prompt": text, "content": text})

    @router.get("/tokenizer_info", response_model=None)
    async def tokenizer_info(request: Request, model: str | None = None) -> Response:
        state = server_state(request)
        card = await state.resolve(_model(state, model))
        info: dict[str, Any] = await state.aclient.tokenizer_info(card.id)
        return JSONResponse({"model": card.id, "pad_token": None, **info})
