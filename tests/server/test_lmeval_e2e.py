"""lm-evaluation-harness's ``local-completions`` and the official ``openai`` client drive a
live ``terminus serve`` (real SmolLM2): the tokenizer endpoints, token-id prompts, batches,
and ``echo`` with prompt-token log-probabilities (lm-eval's log-likelihood requests).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from liveserver import LiveServer
from lm_eval.api.instance import Instance
from lm_eval.models.openai_completions import LocalCompletionsAPI

from terminus.eval.items import McqItem
from terminus.eval.loaders import items_from_records, read_records
from terminus.eval.prompts import continuations, loglikelihood_prompt

pytestmark = pytest.mark.real

MODEL = "smollm2"
#: Compute every prompt afresh: llama.cpp re-running only the last token of a cached prompt
#: moves SmolLM2's log-probabilities by up to 0.25 nats (another batch shape, other kernels).
FRESH = {"cache_prompt": False}
DATA = Path(__file__).parents[1] / "data" / "medbench" / "medqa_usmle_4opt_test.jsonl"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("lmeval-home")
    live = LiveServer(home, ["--model", MODEL]).start()
    yield live
    live.stop()
    shutil.rmtree(home, ignore_errors=True)  # the model blob is 100 MB


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as client:
        yield client


@pytest.fixture(scope="module")
def lm(server: LiveServer) -> LocalCompletionsAPI:
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    return LocalCompletionsAPI(
        base_url=f"{server.url}/v1/completions", model=MODEL, num_concurrent=1, max_retries=1
    )


def tokenize(server: LiveServer, text: str) -> list[int]:
    response = httpx.post(
        f"{server.url}/tokenize", json={"prompt": text, "add_special_tokens": False}, timeout=60
    )
    assert response.status_code == 200, response.text
    tokens: list[int] = response.json()["tokens"]
    return tokens


def test_tokenizer_endpoints_round_trip(server: LiveServer) -> None:
    info = httpx.get(f"{server.url}/tokenizer_info", timeout=60).json()
    assert info["eos_token"] == "<|im_end|>" and info["model_max_length"] == 8192
    assert "im_start" in info["chat_template"]
    text = "Héllo wörld, 37.2 °C <|im_end|>"
    tokens = tokenize(server, text)
    assert tokens[-1] == 2  # the special token written in the text is parsed, as llama.cpp does
    back = httpx.post(f"{server.url}/detokenize", json={"tokens": tokens}, timeout=60).json()
    assert back["prompt"] == text
    # llama.cpp's field names work too
    same = httpx.post(f"{server.url}/tokenize", json={"content": text}, timeout=60).json()
    assert same["tokens"] == tokens
    bad = httpx.post(f"{server.url}/detokenize", json={"tokens": [10**7]}, timeout=60)
    assert bad.status_code == 400 and "vocabulary" in bad.json()["error"]["message"]
    missing = httpx.post(f"{server.url}/tokenize", json={"model": "no-such-model", "prompt": "x"})
    assert missing.status_code == 404


def test_echo_scores_every_prompt_token(server: LiveServer, sdk: openai.OpenAI) -> None:
    ids = tokenize(server, "The capital of France is Paris")
    scored = sdk.completions.create(
        model=MODEL, prompt=[ids], echo=True, logprobs=2, max_tokens=0, temperature=0
    )
    choice = scored.choices[0]
    assert choice.text == "The capital of France is Paris"
    assert choice.finish_reason == "length"
    lp = choice.logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert len(lp.tokens) == len(ids) and "".join(lp.tokens) == choice.text
    assert lp.token_logprobs[0] is None and all(x < 0 for x in lp.token_logprobs[1:])
    assert lp.top_logprobs is not None and lp.top_logprobs[0] is None
    assert all(len(top) == 2 for top in lp.top_logprobs[1:])
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(ids))]
    assert scored.usage is not None and scored.usage.prompt_tokens == len(ids)

    # the log-probability of the next token equals the one generation reports for it
    head = ids[:-1]
    generated = sdk.completions.create(
        model=MODEL, prompt=head, max_tokens=1, logprobs=1, temperature=0, extra_body=FRESH
    )
    assert generated.choices[0].text == " Paris"
    gen_lp = generated.choices[0].logprobs
    assert gen_lp is not None and gen_lp.token_logprobs is not None
    assert math.isclose(gen_lp.token_logprobs[0], lp.token_logprobs[-1], abs_tol=2e-3)

    # echo with generation: the prompt, then what was generated, one offset sequence
    both = sdk.completions.create(
        model=MODEL, prompt=head, echo=True, logprobs=1, max_tokens=1, temperature=0
    )
    assert both.choices[0].text == "The capital of France is Paris"
    both_lp = both.choices[0].logprobs
    assert both_lp is not None and both_lp.tokens is not None and len(both_lp.tokens) == len(ids)


def test_batches_and_token_prompts_answer_like_single_requests(
    server: LiveServer, sdk: openai.OpenAI
) -> None:
    prompts = ["The capital of France is", "Water boils at"]
    batch = sdk.completions.create(model=MODEL, prompt=prompts, max_tokens=6, temperature=0, n=2)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    singles = [
        sdk.completions.create(model=MODEL, prompt=p, max_tokens=6, temperature=0).choices[0].text
        for p in prompts
    ]
    assert [c.text for c in batch.choices] == [singles[0], singles[0], singles[1], singles[1]]
    as_ids = sdk.completions.create(
        model=MODEL, prompt=tokenize(server, prompts[0]), max_tokens=6, temperature=0
    )
    assert as_ids.choices[0].text == singles[0]  # SmolLM2 adds no BOS: the same tokens
    mixed = httpx.post(  # one batch of a text and a token-id list (the SDK's types forbid it)
        f"{server.url}/v1/completions",
        json={
            "model": MODEL,
            "prompt": [prompts[1], tokenize(server, prompts[0])],
            "max_tokens": 6,
            "temperature": 0,
        },
        timeout=120,
    )
    assert mixed.status_code == 200, mixed.text
    assert [c["text"] for c in mixed.json()["choices"]] == [singles[1], singles[0]]
    with pytest.raises(openai.BadRequestError, match="invalid"):
        sdk.completions.create(model=MODEL, prompt=[49152 + 10], max_tokens=1)


def test_lm_eval_local_completions_scores_options(
    server: LiveServer, sdk: openai.OpenAI, lm: LocalCompletionsAPI
) -> None:
    """lm-eval finds the remote tokenizer by itself and sends token ids with echo."""
    assert lm.tokenizer_backend == "remote" and lm.tokenized_requests
    context = "The capital of France is"
    options = [" Paris", " the", " London"]  # all among the 5 most likely next tokens
    results = lm.loglikelihood(
        [Instance("loglikelihood", {}, (context, o), i) for i, o in enumerate(options)]
    )
    # what the server's own generation says about the next token, option by option
    top = sdk.completions.create(
        model=MODEL, prompt=context, max_tokens=1, logprobs=5, temperature=0, extra_body=FRESH
    ).choices[0]
    assert top.logprobs is not None and top.logprobs.top_logprobs is not None
    alternatives = top.logprobs.top_logprobs[0]
    for option, (logprob, greedy) in zip(options, results, strict=True):
        assert option in alternatives
        assert math.isclose(logprob, alternatives[option], abs_tol=2e-3)
        assert greedy == (option == top.text)
    assert results[0][1] is True  # " Paris" is what greedy decoding writes

    generated = lm.generate_until(
        [Instance("generate_until", {}, (context, {"until": ["\n"], "max_gen_toks": 6}), 0)]
    )
    plain = sdk.completions.create(
        model=MODEL, prompt=context, max_tokens=6, temperature=0, stop=["\n"], seed=1234
    )
    assert generated == [plain.choices[0].text]


def _items(n: int) -> list[McqItem]:
    return items_from_records(read_records(DATA), "medqa")[:n]


def test_lm_eval_matches_terminus_eval_on_medqa(
    server: LiveServer, sdk: openai.OpenAI, lm: LocalCompletionsAPI
) -> None:
    """Parity: lm-eval's log-likelihood through the server equals the next-token
    log-probabilities ``terminus eval`` scores with (one forward pass per item)."""
    for item in _items(2):
        prompt = loglikelihood_prompt("medqa", item)
        conts = continuations(item)
        results = lm.loglikelihood(
            [Instance("loglikelihood", {}, (prompt, c), i) for i, c in enumerate(conts.values())]
        )
        top = sdk.completions.create(
            model=MODEL, prompt=prompt, max_tokens=1, logprobs=5, temperature=0, extra_body=FRESH
        ).choices[0]
        assert top.logprobs is not None and top.logprobs.top_logprobs is not None
        alternatives = top.logprobs.top_logprobs[0]
        again = sdk.completions.create(
            model=MODEL, prompt=prompt, max_tokens=1, logprobs=5, temperature=0, extra_body=FRESH
        ).choices[0]
        assert again.logprobs is not None and again.logprobs.top_logprobs == [alternatives]
        for cont, (logprob, _) in zip(conts.values(), results, strict=True):
            if cont in alternatives:
                assert math.isclose(logprob, alternatives[cont], abs_tol=2e-3)
