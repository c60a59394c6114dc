"""End to end: a live ``terminus serve --ollama-port`` with the real SmolLM2 and MiniLM (and
Qwen2.5-Coder-0.5B, pulled through /api/pull, for Ollama's tool round trip), driven by the
official ``ollama``, ``anthropic`` and ``openai`` clients.

Ollama has no ``tool_choice``; SmolLM2 never chooses a tool by itself, Qwen does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jsonschema
import numpy as np
import ollama
import openai
import pytest
from test_openai_e2e import _free_port, _wait_ready

from terminus import Terminus

pytestmark = pytest.mark.real

MODEL = "smollm2"
EMBED_MODEL = "all-minilm-l6-v2"
TOOL_MODEL = "qwen2.5-coder-0.5b-instruct"
GREEDY = {"temperature": 0, "seed": 1}
QUESTION = "What is the capital of France?"
TEXTS = ["The cat sat on the mat.", "Quarterly tax filings are due at the end of April."]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 20},
        "confident": {"type": "boolean"},
    },
    "required": ["answer", "confident"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Live:
    url: str
    ollama_url: str
    log: Path

    clients: list[Any] = field(default_factory=list)

    def _keep(self, client: Any) -> Any:
        self.clients.append(client)  # closed with the server
        return client

    def ollama(self) -> Any:
        return self._keep(ollama.Client(host=self.ollama_url, timeout=300))

    def anthropic(self) -> Any:
        client = anthropic.Anthropic(base_url=self.url, api_key="x", max_retries=0, timeout=120)
        return self._keep(client)

    def openai(self) -> Any:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key="x", max_retries=0, timeout=120)
        return self._keep(client)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("ecosystem-home")
    log = home.parent / f"{home.name}.log"
    port, ollama_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="3G")
    threads = os.environ.get("TERMINUS_TEST_THREADS", "1")
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port),
        "--ollama-port", str(ollama_port), "--model", MODEL, "--model", EMBED_MODEL,
        "--context-length", "1024", "--parallel", "2", "--threads", threads,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process, log, timeout=90)
        server = Live(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ollama_port}", log)
        yield server
        for client in server.clients:
            client.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


# --- Ollama ---------------------------------------------------------------------------------


def test_ollama_chat(live: Live) -> None:
    client = live.ollama()
    messages = [{"role": "user", "content": QUESTION}]
    options = {**GREEDY, "num_predict": 40}
    answer = client.chat(MODEL, messages=messages, options=options)
    assert "Paris" in (answer.message.content or "")
    assert answer.done and answer.done_reason in ("stop", "length")
    assert answer.prompt_eval_count and answer.eval_count and answer.eval_count <= 40
    assert answer.total_duration and answer.eval_duration and answer.prompt_eval_duration
    assert answer.total_duration >= answer.eval_duration
    parts = list(client.chat(MODEL, messages=messages, options=options, stream=True))
    assert "".join(p.message.content or "" for p in parts) == answer.message.content
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert parts[-1].eval_count == answer.eval_count


def test_ollama_generate(live: Live) -> None:
    client = live.ollama()
    answer = client.generate(MODEL, QUESTION, system="You are a helpful assistant.", options=GREEDY)
    assert "Paris" in answer.response and answer.done
    raw = client.generate(
        MODEL, "The capital of France is", raw=True, options={**GREEDY, "num_predict": 4}
    )
    assert raw.response.strip() and raw.eval_count == 4 and raw.done_reason == "length"


def test_ollama_format_schema(live: Live) -> None:
    answer = live.ollama().chat(
        MODEL,
        messages=[{"role": "user", "content": QUESTION + " Reply in JSON."}],
        format=ANSWER_SCHEMA,
        options={**GREEDY, "num_predict": 96},
    )
    jsonschema.validate(json.loads(answer.message.content or ""), ANSWER_SCHEMA)


@pytest.fixture(scope="module")
def reference_vectors(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray[Any, Any]:
    home = tmp_path_factory.mktemp("embed-reference")
    threads = int(os.environ.get("TERMINUS_TEST_THREADS", "1"))
    with Terminus(home=home, allow_download=False, memory_budget="1G") as client:
        client.load_model(EMBED_MODEL, threads=threads)
        vectors: np.ndarray[Any, Any] = client.embed(TEXTS, model=EMBED_MODEL).vectors
    shutil.rmtree(home, ignore_errors=True)
    return vectors


def test_ollama_embed_equals_terminus_embed(
    live: Live, reference_vectors: np.ndarray[Any, Any]
) -> None:
    client = live.ollama()
    answer = client.embed(EMBED_MODEL, TEXTS)
    vectors = np.array(answer.embeddings, dtype=np.float32)
    assert vectors.shape == (2, 384)
    assert np.abs(vectors - reference_vectors).max() < 1e-5
    assert answer.prompt_eval_count and answer.prompt_eval_count > 0
    legacy = client.embeddings("minilm", TEXTS[0])
    assert np.abs(np.array(legacy.embedding) - reference_vectors[0]).max() < 1e-5


def test_ollama_tags_ps_show_version(live: Live) -> None:
    client = live.ollama()
    names = {m.model for m in client.list().models}
    assert {"smollm2-135m-instruct:latest", "all-minilm-l6-v2:latest"} <= names
    loaded = {m.model: m for m in client.ps().models}
    assert loaded["smollm2-135m-instruct:latest"].size
    shown = client.show("smollm2:latest")
    assert shown.details is not None and shown.details.quantization_level == "Q4_1"
    assert shown.modelinfo and shown.modelinfo["llama.context_length"] == 8192
    assert "completion" in (shown.capabilities or [])
    version = httpx.get(f"{live.ollama_url}/api/version").json()["version"]
    assert version.count(".") == 2
    assert httpx.head(f"{live.ollama_url}/").status_code == 200


@pytest.fixture(scope="module")
def pulled(live: Live) -> list[Any]:
    """The progress of pulling Qwen (six installed chunks joined, then verified)."""
    return list(live.ollama().pull(TOOL_MODEL, stream=True))


def test_ollama_pull_progress(live: Live, pulled: list[Any]) -> None:
    statuses = [p.status for p in pulled]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    progress = [p for p in pulled if p.total]
    assert len(progress) > 10 and progress[-1].completed == progress[-1].total == 491_400_064
    completed = [p.completed for p in progress]
    assert completed == sorted(completed)
    assert f"{TOOL_MODEL}:latest" in {m.model for m in live.ollama().list().models}


def test_ollama_tool_round_trip(live: Live, pulled: list[Any]) -> None:
    client = live.ollama()
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    first = client.chat(
        TOOL_MODEL, messages=messages, tools=[WEATHER], options={**GREEDY, "num_predict": 96}
    )
    [call] = first.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert "paris" in str(call.function.arguments.get("city", "")).lower()
    messages += [
        first.message,
        {"role": "tool", "content": "22 C, sunny", "tool_name": "get_weather"},
    ]
    final = client.chat(
        TOOL_MODEL, messages=messages, tools=[WEATHER], options={**GREEDY, "num_predict": 64}
    )
    assert final.done
    # the call and its result reached the model's prompt
    assert (final.prompt_eval_count or 0) > (first.prompt_eval_count or 0) + 10


def test_ollama_copy_create_delete(live: Live) -> None:
    client = live.ollama()
    created = client.create(
        "terse-smol",
        from_=MODEL,
        system="You are a helpful assistant. Answer in one short sentence.",
        parameters={"temperature": 0, "num_predict": 24},
    )
    assert created.status == "success"
    shown = client.show("terse-smol")
    assert "num_predict" in (shown.parameters or "")
    answer = client.chat("terse-smol", messages=[{"role": "user", "content": QUESTION}])
    assert "Paris" in (answer.message.content or "") and (answer.eval_count or 0) <= 24
    client.copy("terse-smol", "terse-copy")
    assert "terse-copy:latest" in {m.model for m in client.list().models}
    client.delete("terse-copy")
    client.delete("terse-smol")
    names = {m.model for m in client.list().models}
    assert "terse-copy:latest" not in names and "terse-smol:latest" not in names
    assert "smollm2-135m-instruct:latest" in names  # the shared weights stay


def test_ollama_errors(live: Live) -> None:
    client = live.ollama()
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat("no-such-model", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404 and "no-such-model" in missing.value.error
    with pytest.raises(ollama.ResponseError) as bad:
        client.chat(MODEL, messages=[{"role": "user", "content": "x"}], options={"mirostat": 2})
    assert bad.value.status_code == 400 and "options.mirostat" in bad.value.error
    with pytest.raises(ollama.ResponseError) as gone:
        client.delete("no-such-model")
    assert gone.value.status_code == 404


def test_ollama_keep_alive_zero_unloads(live: Live) -> None:
    client = live.ollama()
    client.generate(MODEL, QUESTION, options={**GREEDY, "num_predict": 4}, keep_alive=0)
    assert "smollm2-135m-instruct:latest" not in {m.model for m in client.ps().models}
    loaded = client.generate(MODEL, "")
    assert loaded.done_reason == "load"
    assert "smollm2-135m-instruct:latest" in {m.model for m in client.ps().models}


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_create_and_stream(live: Live) -> None:
    client = live.anthropic()
    asked: Any = [{"role": "user", "content": QUESTION}]
    message = client.messages.create(
        model=MODEL,
        max_tokens=40,
        system="You are a helpful assistant.",
        messages=asked,
        extra_body=GREEDY,
    )
    text = "".join(b.text for b in message.content if b.type == "text")
    assert "Paris" in text and message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with client.messages.stream(
        model=MODEL,
        max_tokens=40,
        system="You are a helpful assistant.",
        messages=asked,
        extra_body=GREEDY,
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text and final.usage.output_tokens == message.usage.output_tokens
    counted = client.messages.count_tokens(
        model=MODEL, system="You are a helpful assistant.", messages=asked
    )
    assert counted.input_tokens == message.usage.input_tokens


def test_anthropic_tools(live: Live) -> None:
    client = live.anthropic()
    tool: Any = {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
    }
    question: Any = {"role": "user", "content": "What is the weather in Paris right now?"}
    first = client.messages.create(
        model=MODEL,
        max_tokens=96,
        tools=[tool],
        tool_choice={"type": "any"},
        messages=[question],
        extra_body=GREEDY,
    )
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and use.input["city"]
    final = client.messages.create(
        model=MODEL,
        max_tokens=48,
        tools=[tool],
        tool_choice={"type": "none"},
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22 C"}],
            },
        ],
        extra_body=GREEDY,
    )
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in final.content] == ["text"]


def test_anthropic_errors(live: Live) -> None:
    client = live.anthropic()
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=8, messages=hello)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=[{"role": "user", "content": "word " * 1500}],
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


# --- OpenAI: logprobs and n ------------------------------------------------------------------


def test_openai_logprobs(live: Live) -> None:
    client = live.openai()
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        logprobs=True,
        top_logprobs=3,
        **GREEDY,
    )
    choice = response.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        ranked = [t.logprob for t in token.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)
    text = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=4, logprobs=2, **GREEDY
    )
    logprobs = text.choices[0].logprobs
    assert logprobs is not None and "".join(logprobs.tokens or []) == text.choices[0].text
    assert logprobs.top_logprobs and all(len(top) == 2 for top in logprobs.top_logprobs)


def test_openai_n_choices(live: Live) -> None:
    response = live.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a word."}],
        max_tokens=8,
        temperature=1.0,
        seed=3,
        n=2,
    )
    assert [c.index for c in response.choices] == [0, 1]
    assert all(c.message.content for c in response.choices)
    assert response.usage is not None
    assert response.usage.completion_tokens > 8 // 2  # both choices generated
    stream = live.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a word."}],
        max_tokens=8,
        temperature=1.0,
        seed=3,
        n=2,
        stream=True,
    )
    texts = {0: "", 1: ""}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    # the same seeds as above: each streamed choice matches its whole twin
    assert texts == {c.index: c.message.content for c in response.choices}
