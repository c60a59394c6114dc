"""``Terminus.tokenize`` / ``detokenize`` / ``prompt_logprobs`` on the real SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from terminus import Terminus
from terminus.engines.llamacpp_native import LogitsModel
from terminus.engines.llamacpp_score import CHUNK
from terminus.errors import ContextLengthExceededError, InvalidParameterError

pytestmark = pytest.mark.real

MODEL = "smollm2"


def reference(client: Terminus, tokens: list[int]) -> np.ndarray:
    """log P(token i | tokens before it) from one whole-prompt llama.cpp batch."""
    path = client.manager.ensure_files(client.catalog.get(MODEL)).main
    with LogitsModel(path, context=len(tokens)) as model:
        logits = model.logits(tokens)[:-1].astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return np.array([logp[i, tokens[i + 1]] for i in range(len(tokens) - 1)])


def test_prompt_logprobs_equal_llama_cpp_logits(client: Terminus) -> None:
    text = "The capital of France is Paris. The capital of Italy is Rome."
    tokens = client.tokenize(text, model=MODEL)
    assert client.detokenize(tokens, model=MODEL) == text
    scores = client.prompt_logprobs(text, model=MODEL, top=3)
    assert scores.text == text and [t.id for t in scores.tokens] == tokens
    assert scores.tokens[0].logprob is None
    ours = np.array([t.logprob for t in scores.tokens[1:]])
    assert np.abs(ours - reference(client, tokens)).max() < 1e-4
    # top alternatives are sorted and contain the token whenever it is the most likely one
    for token in scores.tokens[1:]:
        values = [v for _, v in token.top]
        assert values == sorted(values, reverse=True) and len(values) == 3
        assert token.logprob is not None and token.logprob <= values[0] + 1e-6
    rome = scores.tokens[-2]
    assert rome.text == " Rome" and rome.top[0][0] == " Rome"  # learnt from the first sentence
    # token ids score the same as the text they spell
    by_ids = client.prompt_logprobs(tokens, model=MODEL)
    assert [t.logprob for t in by_ids.tokens] == [t.logprob for t in scores.tokens]


def test_prompts_longer_than_one_batch_are_scored_across_batches(client: Terminus) -> None:
    text = " ".join(f"item {i}," for i in range(120))
    tokens = client.tokenize(text, model=MODEL)
    assert CHUNK < len(tokens) < 2 * CHUNK
    scores = client.prompt_logprobs(tokens, model=MODEL)
    ours = np.array([t.logprob for t in scores.tokens[1:]])
    ref = reference(client, tokens)
    # the first batch is the same computation; later rows run in another batch shape
    assert np.abs(ours[: CHUNK - 1] - ref[: CHUNK - 1]).max() < 1e-4
    assert np.abs(ours - ref).max() < 0.05
    # the counting pattern is predictable: late tokens are nearly certain
    assert float(np.mean(ours[-50:])) > -0.5


def test_bad_prompts_are_typed_errors(client: Terminus) -> None:
    with pytest.raises(InvalidParameterError, match="vocabulary"):
        client.prompt_logprobs([1, 10**7], model=MODEL)
    with pytest.raises(InvalidParameterError, match="empty"):
        client.prompt_logprobs("", model=MODEL)
    with pytest.raises(ContextLengthExceededError):
        client.prompt_logprobs([1] * 5000, model=MODEL)
    info = client.tokenizer_info(MODEL)
    assert info["eos_token"] == "<|im_end|>" and info["add_bos_token"] is False


def test_option_scores_reuse_the_context_exactly(client: Terminus) -> None:
    """A context followed by each option in turn (lm-eval's requests): the second and later
    prompts reuse the first one's rows and must equal a fresh computation bit for bit."""
    from terminus.engines.llamacpp_score import PromptScorer

    path = client.manager.ensure_files(client.catalog.get(MODEL)).main
    context = (
        "Question: What is the boiling point of water at sea level?\nA. 90 C\nB. 100 C\nAnswer:"
    )
    prompts = [client.tokenize(context + option, model=MODEL) for option in (" A", " B")]
    with_reuse, fresh = PromptScorer(path, context=512), PromptScorer(path, context=512)
    try:
        for prompt in prompts:
            reused = with_reuse.score(prompt, top=2)
            fresh.forget()
            assert reused == fresh.score(prompt, top=2)
        # another length, or more alternatives than were kept, is computed afresh
        longer = prompts[0] + prompts[0][-1:]
        assert with_reuse.score(longer, top=2) == PromptScorer(path, context=512).score(longer, 2)
        assert len(with_reuse.score(prompts[0], top=4)[-1].top) == 4
    finally:
        with_reuse.close()
        fresh.close()
