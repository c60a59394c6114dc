"""A thinking budget for generative scoring: reasoning capped at N tokens, then the answer.

A thinking model (Qwen3 and the MedPsy models built on it) may reason for thousands of tokens
before it answers. With a budget, the first call may produce at most ``budget`` tokens. If the
reasoning is still open then, it is closed with the sentence Qwen's own documentation uses for
this ("Considering the limited time…") and ``</think>``, and a second call continues that
assistant message (an assistant *prefill*: the llama.cpp server continues a final assistant
message rather than starting a new one) for up to ``max_tokens`` more. A reply that was simply
cut while answering is continued the same way, without the closing sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminus.eval.backends import EvalBackend, Generation
from terminus.eval.extract import strip_thinking, thinking_of

#: Inserted when the budget runs out mid-thought (Qwen3's documented early-exit wording).
CLOSE_THINKING = (
    "\n\nConsidering the limited time by the user, I have to give the solution based on the "
    "thinking directly now.\n</think>\n\n"
)


@dataclass(frozen=True)
class BudgetedGeneration:
    generation: Generation
    #: The reasoning reached the budget and was closed for the model.
    truncated: bool
    #: Tokens the first call produced (reasoning, and any answer begun within the budget).
    thinking_tokens: int


def generate_with_budget(
    backend: EvalBackend,
    messages: list[dict[str, str]],
    *,
    budget: int,
    max_tokens: int,
    temperature: float,
    seed: int,
) -> BudgetedGeneration:
    first = backend.generate(messages, max_tokens=budget, temperature=temperature, seed=seed)
    written = _as_written(first)
    if first.completion_tokens < budget:  # it finished within the budget
        return BudgetedGeneration(first, False, first.completion_tokens)
    lowered = written.lower()
    still_thinking = "<think>" in lowered and "</think>" not in lowered
    prefill = written + CLOSE_THINKING if still_thinking else written
    second = backend.generate(
        [*messages, {"role": "assistant", "content": prefill}],
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    whole = prefill + _as_written(second)
    joined = Generation(
        text=strip_thinking(whole).strip(),
        thinking=thinking_of(whole),
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        completion_tokens=first.completion_tokens + second.completion_tokens,
    )
    return BudgetedGeneration(joined, still_thinking, first.completion_tokens)


def _as_written(out: Generation) -> str:
    """The reply as the model wrote it, with reasoning an engine reported apart put back."""
    if out.thinking and "<think>" not in out.text.lower():
        return f"<think>{out.thinking}</think>{out.text}" if out.text else f"<think>{out.thinking}"
    return out.text
