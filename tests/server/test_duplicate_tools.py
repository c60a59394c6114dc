"""Two tools with one name are a client error (400), never a silent pick of either."""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import pytest
from fakecards import fake_card
from serverkit import assert_error, chat_body, sse_events

from terminus import Terminus
from terminus.errors import InvalidParameterError
from terminus.types import Tool

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _twice() -> list[dict[str, object]]:
    other = copy.deepcopy(WEATHER)
    other["function"]["description"] = "Weather forecast"  # type: ignore[index]
    return [WEATHER, other]


@pytest.mark.parametrize("stream", [False, True])
async def test_duplicate_tool_names_are_a_400(api: httpx.AsyncClient, stream: bool) -> None:
    body = chat_body("weather in Paris?", tools=_twice(), stream=stream)
    response = await api.post("/v1/chat/completions", json=body)
    error = assert_error(response, 400, "invalid_parameter")
    assert "get_weather" in error["message"] and "unique" in error["message"]


async def test_distinct_tool_names_still_pass(api: httpx.AsyncClient) -> None:
    other = copy.deepcopy(WEATHER)
    other["function"]["name"] = "get_forecast"  # type: ignore[index]
    body = chat_body("weather in Paris?", tools=[WEATHER, other], stream=True)
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert sse_events(response.text)[-1] == "[DONE]"


def test_the_python_api_raises_the_typed_error(tmp_path: Path) -> None:
    with Terminus(home=tmp_path / "home") as client:
        client.catalog.register(fake_card(tmp_path / "w"))
        tool = Tool(name="lookup", parameters={"type": "object"})
        with pytest.raises(InvalidParameterError, match="'lookup'"):
            client.completion("fake-chat", "hi", tools=[tool, tool]).text()
