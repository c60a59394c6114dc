"""/v1/completions with several prompts, or with ``echo``: one answer, built here.

Choice ``i * n + j`` is the ``j``-th generation for prompt ``i`` (OpenAI's order). With
``echo`` each choice's text starts with its prompt, and with ``logprobs`` the prompt's
tokens come first in ``logprobs``, each scored given those before it (the first has
none) — the form lm-evaluation-harness's ``local-completions`` reads for its
log-likelihood tasks. ``max_tokens: 0`` with ``echo`` scores the prompt only.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from terminus.models.card import ModelCard
from terminus.server.convert import Prompt, seeded
from terminus.server.errors import unsupported
from terminus.server.generation import FINISH_REASONS, collect_choices
from terminus.server.logprobs import echo_logprobs, join_text_logprobs, text_logprobs
from terminus.server.middleware import AccessRecord
from terminus.server.schemas import CompletionRequest
from terminus.server.state import ServerState
from terminus.types import Completion

_NO_LOGPROBS: dict[str, list[Any]] = {
    "tokens": [],
    "token_logprobs": [],
    "top_logprobs": [],
    "text_offset": [],
}


async def respond_batch(
    request: Request,
    state: ServerState,
    card: ModelCard,
    body: CompletionRequest,
    prompts: list[Prompt],
    kwargs: dict[str, Any],
    n: int,
    record: AccessRecord,
) -> Response:
    if body.stream:
        raise unsupported("stream", "streaming several prompts or an echoed prompt")
    top = body.logprobs
    choices: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    finish = None
    for prompt in prompts:
        echo_text, echo_lp, echo_count = await _echo(state, card, prompt, body.echo, top)
        completions: list[Completion | None] = [None] * n
        if body.max_tokens != 0:
            streams = [
                state.aclient.text_completion(prompt, model=card.id, **seeded(kwargs, j))
                for j in range(n)
            ]
            completions = list(await collect_choices(request, state, card, streams))
        for completion in completions:
            choice, used = _choice(completion, echo_text, echo_lp, top)
            choice["index"] = len(choices)
            choices.append(choice)
            completion_tokens += used
            finish = finish or (completion.stop_reason if completion else "length")
        first = completions[0]
        prompt_tokens += (
            echo_count if first is None or first.stats is None else (first.stats.prompt_tokens)
        )
    record.prompt_tokens, record.completion_tokens = prompt_tokens, completion_tokens
    record.finish_reason = finish
    return JSONResponse(
        {
            "id": "cmpl-" + uuid.uuid4().hex,
            "object": "text_completion",
            "created": int(time.time()),
            "model": card.id,
            "system_fingerprint": None,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


async def _echo(
    state: ServerState, card: ModelCard, prompt: Prompt, echo: bool | None, top: int | None
) -> tuple[str, dict[str, Any] | None, int]:
    """(echoed text, its logprobs or None, its token count) for one prompt."""
    if not echo:
        return "", None, 0
    if top is None:  # the text alone: no scoring needed
        if isinstance(prompt, str):
            tokens = await state.aclient.tokenize(prompt, model=card.id)
            return prompt, None, len(tokens)
        return await state.aclient.detokenize(prompt, model=card.id), None, len(prompt)
    slot = state.admit()  # scoring is model work: it counts against the server's slots
    try:
        scores = await state.aclient.prompt_logprobs(prompt, model=card.id, top=max(top, 1))
    finally:
        slot.release()
    return scores.text, echo_logprobs(scores.tokens, top), len(scores.tokens)


def _choice(
    completion: Completion | None,
    echo_text: str,
    echo_lp: dict[str, Any] | None,
    top: int | None,
) -> tuple[dict[str, Any], int]:
    """One choice and the tokens it generated."""
    text = echo_text + (completion.text if completion else "")
    logprobs = None
    if top is not None:
        generated = (
            text_logprobs(completion.logprobs, top, offset=len(echo_text))
            if completion
            else _NO_LOGPROBS
        )
        logprobs = join_text_logprobs(echo_lp, generated) if echo_lp else generated
    reason = FINISH_REASONS.get(completion.stop_reason, "stop") if completion else "length"
    used = completion.stats.completion_tokens if completion and completion.stats else 0
    return {"text": text, "index": 0, "logprobs": logprobs, "finish_reason": reason}, used
