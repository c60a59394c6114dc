"""Token log-probabilities in OpenAI's two shapes, and ``n > 1`` answers.

Chat: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}``.
Text completions (legacy): ``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}``.
The numbers are llama.cpp's: natural logs over the whole vocabulary, before sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from terminus.types import TokenLogprobs

if TYPE_CHECKING:
    from terminus.engines.llamacpp_score import TokenScore


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(steps: Sequence[TokenLogprobs], top: int) -> dict[str, Any]:
    """``choices[i].logprobs`` of a chat completion; ``top`` alternatives per token."""
    content = [
        {
            **_entry(step.token, step.logprob),
            "top_logprobs": [_entry(t.token, t.logprob) for t in step.top[:top]],
        }
        for step in steps
    ]
    return {"content": content, "refusal": None}


def _offsets(texts: Sequence[str], offset: int = 0) -> list[int]:
    """Where each token's text starts, counting from ``offset``."""
    starts = []
    for text in texts:
        starts.append(offset)
        offset += len(text)
    return starts


def text_logprobs(steps: Sequence[TokenLogprobs], top: int, offset: int = 0) -> dict[str, Any]:
    """``choices[i].logprobs`` of a text completion; offsets count from ``offset``."""
    offsets = _offsets([step.token for step in steps], offset)
    return {
        "tokens": [step.token for step in steps],
        "token_logprobs": [step.logprob for step in steps],
        "top_logprobs": [
            {t.token: t.logprob for t in step.top[:top]} or {step.token: step.logprob}
            for step in steps
        ],
        "text_offset": offsets,
    }


def echo_logprobs(tokens: Sequence[TokenScore], top: int) -> dict[str, Any]:
    """``logprobs`` of an echoed prompt: its first token has no log-probability."""
    offsets = _offsets([token.text for token in tokens])
    return {
        "tokens": [t.text for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [
            None if t.logprob is None else ({k: v for k, v in t.top[:top]} or {t.text: t.logprob})
            for t in tokens
        ],
        "text_offset": offsets,
    }


def join_text_logprobs(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {key: [*first[key], *second[key]] for key in first}


def merge_choices(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """One answer with ``n`` choices from ``n`` one-choice answers; usage adds up.

    The prompt is counted once, as OpenAI does: every choice read the same prompt.
    """
    merged = dict(bodies[0])
    merged["choices"] = [{**body["choices"][0], "index": i} for i, body in enumerate(bodies)]
    prompt = bodies[0]["usage"]["prompt_tokens"]
    produced = sum(body["usage"]["completion_tokens"] for body in bodies)
    merged["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": produced,
        "total_tokens": prompt + produced,
    }
    return merged
