"""Speculative decoding on llama.cpp: something cheap proposes tokens, the model checks them.

Two proposers, both verified by the model in one batch per step, so greedy output is
the same as without them (only the speed changes):

- ``"draft"``: a smaller model with the same tokenizer (Qwen2.5-Coder-0.5B for the
  1.5B) drafts up to ``draft_max`` tokens per step.
- ``"ngram"``: no second model; the next tokens are looked up where the last few
  tokens already appeared in the prompt or the answer (prompt lookup). It pays off
  when the answer repeats its input: code edits, answers quoting a RAG context.

llama.cpp fixes the proposer when the model loads, so the choice is a load setting:
the card's defaults or load options named ``speculative`` (``"off"``, ``"ngram"``,
``"draft"``), ``draft_model`` (a card id or alias; implies ``"draft"``) and
``draft_max``. The runtime resolves ``draft_model`` to a verified file and passes its
path as ``draft_path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.engines.base import LoadOptions
from terminus.engines.llamacpp_params import Native
from terminus.errors import InvalidParameterError
from terminus.models.card import ModelCard
from terminus.models.gguf import GGUFHeader, estimate_load_bytes, validate_gguf
from terminus.types.common import Capability

SPECULATIVE_KEY = "speculative"
DRAFT_MODEL_KEY = "draft_model"
DRAFT_MAX_KEY = "draft_max"
DRAFT_PATH_KEY = "draft_path"  # set by the runtime: the draft model's verified file
MODES = ("off", "ngram", "draft")
DEFAULT_DRAFT_MAX = 8
# The draft stops proposing once its own next token is less likely than this (llama.cpp's
# command-line default; xllamacpp's is 0, which drafts n_max tokens even when unsure).
DRAFT_P_MIN = 0.75
# Prompt lookup: match the last NGRAM_KEY tokens, propose up to NGRAM_DRAFT after them.
NGRAM_KEY = 3
NGRAM_DRAFT = 16
_TYPE = "common_speculative_type.COMMON_SPECULATIVE_TYPE_"
_TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens")


@dataclass(frozen=True)
class SpeculativePlan:
    mode: str  # "ngram" or "draft"
    draft_model: str | None = None
    draft_max: int = DEFAULT_DRAFT_MAX

    def describe(self) -> str:
        if self.mode == "draft":
            return f"draft model {self.draft_model} (up to {self.draft_max} tokens a step)"
        return "n-gram prompt lookup"


def _setting(card: ModelCard, options: LoadOptions, key: str) -> Any:
    return options.extra.get(key, card.defaults.get(key))


def speculative_plan(card: ModelCard, options: LoadOptions) -> SpeculativePlan | None:
    """The proposer this load asks for (load options over the card's defaults), or None."""
    mode = _setting(card, options, SPECULATIVE_KEY)
    draft = options.extra.get(DRAFT_MODEL_KEY)
    if draft is None and options.extra.get(SPECULATIVE_KEY) in (None, "draft"):
        draft = card.defaults.get(DRAFT_MODEL_KEY)
    if mode is None:
        mode = "draft" if draft else "off"
    if mode is False:
        mode = "off"
    if mode not in MODES:
        raise InvalidParameterError(
            f"speculative must be one of {', '.join(MODES)}, not {mode!r}",
            hint="'ngram' needs no second model; 'draft' needs draft_model",
        )
    if mode == "off":
        return None
    draft_max = _setting(card, options, DRAFT_MAX_KEY)
    if draft_max is None:
        draft_max = DEFAULT_DRAFT_MAX
    if isinstance(draft_max, bool) or not isinstance(draft_max, int) or not 1 <= draft_max <= 64:
        raise InvalidParameterError(
            f"draft_max must be a whole number from 1 to 64, not {draft_max!r}"
        )
    if mode == "ngram":
        return SpeculativePlan("ngram", None, draft_max)
    if not draft or not isinstance(draft, str):
        raise InvalidParameterError(
            "speculative decoding with a draft needs draft_model",
            hint="name a smaller model with the same tokenizer, e.g. draft_model='qwen', "
            "or use speculative='ngram'",
        )
    return SpeculativePlan("draft", draft, draft_max)


def check_draft_tokenizer(
    target: GGUFHeader, draft: GGUFHeader, target_id: str, draft_id: str
) -> None:
    """A draft's tokens are the model's tokens: both GGUFs must carry the same tokenizer."""
    for key in _TOKENIZER_KEYS:
        mine, theirs = target.metadata.get(key), draft.metadata.get(key)
        if mine != theirs:
            raise InvalidParameterError(
                f"{draft_id} cannot draft for {target_id}: their tokenizers differ "
                f"({key}: {theirs!r} vs {mine!r})",
                hint="pick a draft model from the same family (same vocabulary), "
                "or use speculative='ngram'",
            )


def configure_speculative(
    params: Any, plan: SpeculativePlan, draft_path: Path | None, threads: int
) -> None:
    """Write the proposer's settings on a ``ParamsRecorder`` (see llamacpp_params)."""
    spec = params.speculative
    if plan.mode == "ngram":
        spec.types = [Native(_TYPE + "NGRAM_SIMPLE")]
        spec.ngram_simple.size_n = NGRAM_KEY
        spec.ngram_simple.size_m = min(NGRAM_DRAFT, max(plan.draft_max, NGRAM_KEY))
        return
    if draft_path is None:
        raise InvalidParameterError(f"the draft model {plan.draft_model} has no file to load")
    spec.types = [Native(_TYPE + "DRAFT_SIMPLE")]
    spec.draft.mparams.path = str(draft_path)
    spec.draft.cpuparams.n_threads = threads
    spec.draft.cpuparams_batch.n_threads = threads
    spec.draft.n_max = plan.draft_max
    spec.draft.n_min = 0
    spec.draft.p_min = DRAFT_P_MIN


def draft_file(options: LoadOptions) -> Path | None:
    """The draft model's verified file, as the runtime resolved it."""
    value = options.extra.get(DRAFT_PATH_KEY)
    return None if value is None else Path(str(value))


def draft_bytes(card: ModelCard, options: LoadOptions, tokens: int) -> int:
    """A draft model's weights and KV cache (it keeps a context as long as the model's)."""
    if card.capability == Capability.EMBED or speculative_plan(card, options) is None:
        return 0
    path = draft_file(options)
    if path is None:
        return 0
    return estimate_load_bytes(validate_gguf(path), tokens).total_bytes
