"""Where an evaluated model runs: a Terminus client (local or delegated), or any
OpenAI-compatible HTTP endpoint."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from terminus.errors import EngineError, ModelNotFoundError, SourceUnavailableError
from terminus.eval.provenance import lineage_of

if TYPE_CHECKING:
    from terminus.client.sync import Terminus

_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d[A-Z0-9_]*|BF16|F16|F32)(?![A-Za-z0-9])", re.I)


@dataclass(frozen=True)
class Generation:
    text: str
    thinking: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class NextToken:
    """The most likely next tokens after a prompt (token text → natural-log probability)."""

    top: dict[str, float]
    prompt_tokens: int = 0


class EvalBackend(Protocol):
    #: What the report names as the model (and as the judge, for HealthBench).
    label: str
    #: Requests worth keeping in flight at once (llama.cpp slots).
    parallel: int

    def describe(self) -> dict[str, Any]: ...

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int
    ) -> Generation: ...

    def next_token(self, prompt: str, top: int) -> NextToken: ...


class ClientBackend:
    """A model reached through a :class:`Terminus` client, on whatever transport it uses."""

    def __init__(self, client: Terminus, model: str, parallel: int = 4) -> None:
        self.client = client
        self.model = model
        self.label = model
        self.parallel = parallel

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"model": self.model, "backend": "terminus"}
        try:
            card = self.client.catalog.get(self.model)
        except ModelNotFoundError:
            return info
        main = card.files[0]
        quant = _QUANT.search(main.name)
        lineage = lineage_of(card) or {}
        info.update(
            model=card.id,
            file=main.name,
            sha256=main.sha256,
            # A quantized card knows its type; a file name like "…-q8-0.gguf" would read "Q8".
            quantization=lineage.get("type") or (quant.group(1).upper() if quant else None),
            engine=card.engine,
            architecture=card.architecture,
            lineage=lineage or None,
            decoding="greedy, repeat_penalty 1.0, prompt computed afresh",
        )
        return info

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int
    ) -> Generation:
        done = self.client.completion(
            messages,
            model=self.model,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            repeat_penalty=1.0,  # plain greedy decoding, not the card's chat defaults
            cache_prompt=False,  # the answer must not depend on what the slot ran before
        ).result()
        if done.stop_reason == "error":
            raise EngineError(done.error or "generation failed")
        stats = done.stats
        return Generation(
            done.text,
            done.thinking,
            stats.prompt_tokens if stats else 0,
            stats.completion_tokens if stats else 0,
        )

    def next_token(self, prompt: str, top: int) -> NextToken:
        done = self.client.text_completion(
            prompt,
            model=self.model,
            max_tokens=1,
            temperature=0.0,
            top_logprobs=top,
            cache_prompt=False,
        ).result()
        if not done.logprobs:
            raise EngineError(f"{self.model} returned no log-probabilities")
        stats = done.stats
        first = done.logprobs[0]
        return NextToken(
            {t.token: t.logprob for t in first.top}, stats.prompt_tokens if stats else 0
        )


class OpenAIBackend:
    """Any server speaking the OpenAI API (``/chat/completions``; ``/completions`` with
    ``logprobs`` for log-likelihood scoring)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        parallel: int = 4,
        timeout: float = 600.0,
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.base_url = base_url
        self.model = model
        self.label = f"{model} @ {base_url}"
        self.parallel = parallel

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "backend": "openai", "base_url": self.base_url}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.post(path, json={"model": self.model, **body})
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(f"{self.base_url}{path}: {exc}") from exc
        if response.status_code >= 400:
            raise EngineError(
                f"{self.base_url}{path} answered {response.status_code}: {response.text[:300]}"
            )
        data: dict[str, Any] = response.json()
        return data

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int
    ) -> Generation:
        data = self._post(
            "/chat/completions",
            {
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "seed": seed,
            },
        )
        message = data["choices"][0]["message"]
        usage = data.get("usage") or {}
        return Generation(
            message.get("content") or "",
            message.get("reasoning_content") or "",
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )

    def next_token(self, prompt: str, top: int) -> NextToken:
        data = self._post(
            "/completions",
            {"prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": top},
        )
        logprobs = data["choices"][0].get("logprobs") or {}
        usage = data.get("usage") or {}
        return NextToken(parse_top_logprobs(logprobs), int(usage.get("prompt_tokens", 0)))

    def close(self) -> None:
        self._http.close()


def parse_top_logprobs(logprobs: dict[str, Any]) -> dict[str, float]:
    """First-token alternatives from OpenAI's legacy shape or the chat/llama.cpp shape."""
    legacy = logprobs.get("top_logprobs")
    if legacy:
        return {str(k): float(v) for k, v in legacy[0].items()}
    content = logprobs.get("content") or []
    if content:
        return {str(t["token"]): float(t["logprob"]) for t in content[0].get("top_logprobs", [])}
    raise EngineError("the endpoint returned no log-probabilities (does it support logprobs?)")
