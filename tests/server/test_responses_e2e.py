"""End to end: the official ``openai`` SDK's Responses API, /metrics and keep-alive against
a live ``terminus serve`` with the real SmolLM2."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from liveserver import LiveServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

pytestmark = pytest.mark.real

MODEL = "smollm2"
GREEDY: dict[str, Any] = {"temperature": 0, "extra_body": {"seed": 1}}
SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
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


class Answer(BaseModel):
    city: str
    country: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("responses-home")
    live = LiveServer(home, ["--model", MODEL]).start()
    yield live
    live.stop()
    shutil.rmtree(home, ignore_errors=True)  # the model blob is 100 MB


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120
    ) as sdk:
        yield sdk


def test_create_and_retrieve(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, instructions=SYSTEM, input=QUESTION, max_output_tokens=40, **GREEDY
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert "Paris" in response.output_text
    assert response.model == "smollm2-135m-instruct"
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.id == response.id
    items = client.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"]
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_stream(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL, instructions=SYSTEM, input=QUESTION, max_output_tokens=40, **GREEDY
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Paris" in text and final.output_text == text
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert client.responses.retrieve(final.id).output_text == text


def test_function_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL,
        input="What is the weather in Paris right now?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=96,
        **GREEDY,
    )
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_")
    arguments = json.loads(call.arguments)
    assert isinstance(arguments["city"], str) and arguments["city"]
    final = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 C, sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=48,
        **GREEDY,
    )
    assert final.output[0].type == "message" and final.output_text.strip()
    kinds = [item.type for item in client.responses.input_items.list(final.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output"]


def test_stream_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL,
        input="What is the weather in Paris right now?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=96,
        **GREEDY,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    [call] = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [e.arguments for e in done] == [call.arguments]
    assert json.loads(call.arguments)["city"]


def test_structured_output(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        instructions=SYSTEM,
        input=QUESTION + " Reply in JSON.",
        text={
            "format": {
                "type": "json_schema",
                "name": "answer",
                "schema": ANSWER_SCHEMA,
                "strict": True,
            }
        },
        max_output_tokens=96,
        **GREEDY,
    )
    assert response.status == "completed"
    jsonschema.validate(json.loads(response.output_text), ANSWER_SCHEMA)
    parsed = client.responses.parse(
        model=MODEL, input=QUESTION, text_format=Answer, max_output_tokens=96, **GREEDY
    )
    assert isinstance(parsed.output_parsed, Answer) and parsed.output_parsed.city


def test_errors_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="no-such-model", input="hi")
    assert unknown.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=MODEL, input="hi", previous_response_id="resp_nope")
    assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as tool:
        client.responses.create(model=MODEL, input="hi", tools=[{"type": "web_search"}])
    assert tool.value.body["param"] == "tools.0.type"  # type: ignore[index]


def _metrics(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_traffic(client: openai.OpenAI, server: LiveServer) -> None:
    client.responses.create(model=MODEL, input=QUESTION, max_output_tokens=8, **GREEDY)
    samples = _metrics(server)
    route = (("method", "POST"), ("route", "/v1/responses"), ("status", "200"))
    assert samples[("terminus_http_requests_total", route)] >= 1
    model = (("model", "smollm2-135m-instruct"),)
    assert samples[("terminus_tokens_total", (("kind", "completion"), *model))] > 0
    assert samples[("terminus_time_to_first_token_seconds_count", model)] >= 1
    assert samples[("terminus_decode_tokens_per_second_count", model)] >= 1
    assert samples[("terminus_models_loaded", ())] == 1
    assert samples[("terminus_model_memory_bytes", model)] > 50e6
    assert samples[("terminus_model_slots", model)] == 2
    assert samples[("process_resident_memory_bytes", ())] > 50e6


def test_keep_alive_expiry_unloads_the_model(client: openai.OpenAI, server: LiveServer) -> None:
    """Last in the module: the model is unloaded, then loaded again by a request."""
    client.responses.create(
        model=MODEL, input="Hi", max_output_tokens=4, extra_body={"keep_alive": "1s"}
    )
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/terminus/v1/ps").json()["models"]:
        assert time.monotonic() < deadline, "the model is still loaded 30 s after its keep-alive"
        time.sleep(0.1)
    assert _metrics(server)[("terminus_models_loaded", ())] == 0
    reloaded = client.responses.create(model=MODEL, input=QUESTION, max_output_tokens=8, **GREEDY)
    assert reloaded.output_text
    [entry] = httpx.get(f"{server.url}/terminus/v1/ps").json()["models"]
    assert entry["keep_alive_s"] == 1.0  # the model keeps its own keep-alive


def test_previous_response_after_restart(
    tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path
) -> None:
    home = tmp_path_factory.mktemp("restart-home")
    live = LiveServer(home, ["--model", MODEL]).start()
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as sdk:
            first = sdk.responses.create(
                model=MODEL,
                instructions=SYSTEM,
                input="My name is Ada. Please remember it.",
                max_output_tokens=24,
                **GREEDY,
            )
        live.stop()
        live = LiveServer(home, ["--model", MODEL], port=live.port).start()
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as sdk:
            assert sdk.responses.retrieve(first.id).output_text == first.output_text
            second = sdk.responses.create(
                model=MODEL,
                instructions=SYSTEM,
                previous_response_id=first.id,
                input="What is my name?",
                max_output_tokens=24,
                **GREEDY,
            )
            assert second.previous_response_id == first.id
            items = sdk.responses.input_items.list(second.id, order="asc").data
            texts = [item.content[0].text for item in items]  # type: ignore[union-attr]
            assert texts == [
                "My name is Ada. Please remember it.",
                first.output_text,
                "What is my name?",
            ]
            # the model read exactly that conversation: spelled out in full, the same
            # request has as many input tokens (the answers may differ: the prompt cache
            # changes the arithmetic); alone, the question has far fewer
            spelled_out = sdk.responses.create(
                model=MODEL,
                instructions=SYSTEM,
                input=[
                    {"role": "user", "content": texts[0]},
                    {"role": "assistant", "content": texts[1]},
                    {"role": "user", "content": texts[2]},
                ],
                max_output_tokens=4,
                **GREEDY,
            )
            alone = sdk.responses.create(
                model=MODEL, instructions=SYSTEM, input=texts[2], max_output_tokens=4, **GREEDY
            )
            assert second.usage and spelled_out.usage and alone.usage
            assert spelled_out.usage.input_tokens == second.usage.input_tokens
            assert alone.usage.input_tokens < second.usage.input_tokens - 20
    finally:
        live.stop()
        shutil.rmtree(home, ignore_errors=True)
