"""A model's tokenizer and prompt-token log-probabilities (``Terminus.prompt_logprobs``).

What OpenAI's legacy ``echo`` + ``logprobs`` gives and lm-evaluation-harness's
log-likelihood tasks need: how likely each token of a given text is under the model.
Runs on the model's GGUF in this process (llama.cpp through
:mod:`terminus.engines.llamacpp_score`), so it needs the model here, not on a peer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from terminus.errors import CapabilityError, InvalidParameterError
from terminus.types import Capability

if TYPE_CHECKING:
    from terminus.engines.llamacpp_score import PromptScorer, PromptScores
    from terminus.models.card import ModelCard
    from terminus.models.catalog import Catalog
    from terminus.runtime.manager import ModelManager
    from terminus.transports.base import Transport

#: Scorers kept open (each holds a llama.cpp context; the weights are shared mmap pages).
KEEP_SCORERS = 2
#: Tokens a scored prompt may hold (the context the scorer allocates, capped by the model's).
SCORE_CONTEXT = 4096


class ScoringMixin:
    catalog: Catalog
    manager: ModelManager
    transport: Transport
    default_model: str

    def tokenize(
        self, text: str, *, model: str | None = None, add_special: bool = True
    ) -> list[int]:
        """``text`` as the model's token ids (``add_special``: the BOS token where the model
        adds one to a prompt, as generation does)."""
        return self._scorer(model).tokenize(text, add_special=add_special)

    def detokenize(self, tokens: Sequence[int], *, model: str | None = None) -> str:
        return self._scorer(model).detokenize([int(t) for t in tokens])

    def tokenizer_info(self, model: str | None = None) -> dict[str, Any]:
        """The special tokens, chat template and context length of the model's tokenizer."""
        scorer = self._scorer(model)
        return {
            **scorer.special_tokens(),
            "add_bos_token": scorer.adds_bos(),
            "chat_template": scorer.chat_template(),
            "model_max_length": scorer.trained_context(),
        }

    def prompt_logprobs(
        self, prompt: str | Sequence[int], *, model: str | None = None, top: int = 1
    ) -> PromptScores:
        """The log-probability of every token of ``prompt`` given the tokens before it.

        A string is tokenized as generation tokenizes it (with the BOS token where the
        model adds one); a list of token ids is scored exactly as given. The first token
        has no log-probability; each other comes with the ``top`` most likely tokens at
        its position.
        """
        from terminus.engines.llamacpp_score import PromptScores

        scorer = self._scorer(model)
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidParameterError("prompt must not be empty")
            tokens = scorer.tokenize(prompt, add_special=True)
            text = prompt
        else:
            tokens = [int(t) for t in prompt]
            text = scorer.detokenize(tokens)
        return PromptScores(tuple(scorer.score(tokens, top=max(top, 0))), text)

    # -- scorers ----------------------------------------------------------------------

    def _scorer(self, model: str | None) -> PromptScorer:
        from terminus.transports.local import LocalTransport

        card = self.catalog.get(model or self.default_model)
        _check_scorable(card)
        if not isinstance(self.transport, LocalTransport):
            raise CapabilityError(
                f"token scoring of {card.id} needs the model on this machine; "
                "this client sends its requests to a peer"
            )
        path = self.manager.ensure_files(card).main
        lock, scorers = _scorer_table(self)
        with lock:
            scorer = scorers.pop(str(path), None)
            if scorer is None:
                scorer = _open_scorer(path)
            scorers[str(path)] = scorer  # most recently used last
            while len(scorers) > KEEP_SCORERS:
                _, old = scorers.popitem(last=False)
                old.close()
            return scorer

    def close_scorers(self) -> None:
        lock, scorers = _scorer_table(self)
        with lock:
            for scorer in scorers.values():
                scorer.close()
            scorers.clear()


class AsyncScoringMixin:
    """``AsyncTerminus``'s versions: the same calls, run in a thread."""

    sync: Any

    async def tokenize(
        self, text: str, *, model: str | None = None, add_special: bool = True
    ) -> list[int]:
        return await asyncio.to_thread(
            self.sync.tokenize, text, model=model, add_special=add_special
        )

    async def detokenize(self, tokens: Sequence[int], *, model: str | None = None) -> str:
        return await asyncio.to_thread(self.sync.detokenize, tokens, model=model)

    async def tokenizer_info(self, model: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.tokenizer_info, model)

    async def prompt_logprobs(
        self, prompt: str | Sequence[int], *, model: str | None = None, top: int = 1
    ) -> PromptScores:
        return await asyncio.to_thread(self.sync.prompt_logprobs, prompt, model=model, top=top)


def _check_scorable(card: ModelCard) -> None:
    if card.capability not in (Capability.CHAT, Capability.COMPLETION) or card.format != "gguf":
        raise CapabilityError(f"{card.id} is not a llama.cpp text model; it has no token scores")
    if card.defaults.get("lora_adapter"):
        raise CapabilityError(
            f"token scoring of {card.id} (a LoRA adapter) is not supported",
            hint=f"score its base model {card.base_model}",
        )


def _open_scorer(path: Any) -> PromptScorer:
    from terminus.engines.llamacpp import default_threads
    from terminus.engines.llamacpp_score import PromptScorer

    return PromptScorer(path, context=SCORE_CONTEXT, threads=default_threads())


_TABLE_LOCK = threading.Lock()


def _scorer_table(owner: object) -> tuple[threading.Lock, OrderedDict[str, PromptScorer]]:
    with _TABLE_LOCK:
        table = owner.__dict__.get("_prompt_scorers")
        if table is None:
            table = (threading.Lock(), OrderedDict())
            owner.__dict__["_prompt_scorers"] = table
        return table
