"""Prompted tool calling: the dialects small models write, schemas, and history rewriting."""

from __future__ import annotations

import json

import jsonschema
import pytest

from terminus.engines.tool_prompting import (
    ANSWER_NUDGE,
    looks_like_call,
    new_call_id,
    parse_calls,
    rewrite_history,
    tool_call_schema,
    tool_system_prompt,
)
from terminus.types import Message, Tool, ToolCall

WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
CLOCK = Tool(name="get_time")
TOOLS = (WEATHER, CLOCK)
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def _named(calls: list[ToolCall]) -> list[tuple[str, dict[str, object]]]:
    return [(c.name, c.arguments) for c in calls]


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        CALL,
        f"  \n{CALL}\n ",
        f"```json\n{CALL}\n```",
        f"```\n{CALL}\n```",
        f"<tool_call>\n{CALL}\n</tool_call>",
        f"<tool_call>{CALL}",  # unterminated tag (the model hit its stop token)
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',  # arguments as text
    ],
    ids=["plain", "padded", "fenced-json", "fenced", "tagged", "open-tag", "parameters", "string"],
)
def test_single_call_dialects(text: str) -> None:
    calls = parse_calls(text, TOOLS)
    assert _named(calls) == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")


def test_a_list_of_calls() -> None:
    text = json.dumps(
        [
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
            {"name": "get_time", "arguments": {}},
        ]
    )
    calls = parse_calls(text, TOOLS)
    assert _named(calls) == [("get_weather", {"city": "Oslo"}), ("get_time", {})]
    assert len({c.id for c in calls}) == 2


def test_several_tagged_calls() -> None:
    text = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    )
    assert _named(parse_calls(text, TOOLS)) == [("get_weather", {"city": "Oslo"}), ("get_time", {})]


def test_missing_arguments_mean_none() -> None:
    assert _named(parse_calls('{"name": "get_time"}', TOOLS)) == [("get_time", {})]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "launch_missiles", "arguments": {}}',
        '[{"name": "get_time", "arguments": {}}, {"name": "nope", "arguments": {}}]',
        "The weather in Paris is sunny.",
        "",
        "{not json}",
        '"get_weather"',
        "42",
        '{"name": "get_weather", "arguments": [1, 2]}',
        '{"name": "get_weather", "arguments": "not json"}',
        '{"arguments": {"city": "Paris"}}',
        f"Sure! {CALL}",  # prose around a call is an answer, not a call
    ],
    ids=[
        "unknown-tool",
        "one-unknown-in-list",
        "prose",
        "empty",
        "broken-json",
        "string",
        "number",
        "list-arguments",
        "bad-string-arguments",
        "no-name",
        "prose-prefix",
    ],
)
def test_not_a_call(text: str) -> None:
    assert parse_calls(text, TOOLS) == []


def test_no_tools_means_no_calls() -> None:
    assert parse_calls(CALL, ()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", True),
        ("  [", True),
        ("```json", True),
        ("<tool_call>", True),
        ("Hello", False),
        ("", False),
    ],
)
def test_looks_like_call(text: str, expected: bool) -> None:
    assert looks_like_call(text) is expected


def test_call_ids_are_unique() -> None:
    ids = {new_call_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("call_") and len(i) == 29 for i in ids)


# --- schemas and prompts ---------------------------------------------------------------------


def test_schema_for_one_tool() -> None:
    schema = tool_call_schema((WEATHER,))
    assert "anyOf" not in schema
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"] == WEATHER.parameters
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(CALL), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "get_weather", "arguments": {}}, schema)  # city required
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "get_time", "arguments": {}}, schema)


def test_schema_for_several_tools() -> None:
    schema = tool_call_schema(TOOLS)
    assert len(schema["anyOf"]) == 2
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(CALL), schema)
    jsonschema.validate({"name": "get_time", "arguments": {}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "other", "arguments": {}}, schema)


def test_schema_for_a_named_tool() -> None:
    schema = tool_call_schema(TOOLS, only="get_time")
    assert schema["properties"]["name"] == {"const": "get_time"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(CALL), schema)


def test_parsed_calls_satisfy_the_schema() -> None:
    schema = tool_call_schema(TOOLS)
    for call in parse_calls(f"```json\n{CALL}\n```", TOOLS):
        jsonschema.validate({"name": call.name, "arguments": call.arguments}, schema)


def test_system_prompt_lists_the_tools() -> None:
    required = tool_system_prompt(TOOLS, required=True)
    optional = tool_system_prompt(TOOLS, required=False)
    for text in (required, optional):
        assert "get_weather" in text and "get_time" in text and '"city"' in text
    assert "Otherwise, answer normally" in optional
    assert "Otherwise" not in required


# --- history -----------------------------------------------------------------------------------


def test_rewrite_history_turns_tool_traffic_into_plain_turns() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris", "days": 2})
    history = (
        Message(role="system", content="sys"),
        Message(role="user", content="weather?"),
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", tool_call_id="call_1", name="get_weather", content="sunny, 21C"),
        Message(role="tool", tool_call_id="call_2", content="no name"),
        Message(role="assistant", content="It is sunny."),
    )
    out = rewrite_history(history)
    assert [m.role for m in out] == ["system", "user", "assistant", "user", "assistant"]
    assert out[0] == history[0] and out[1] == history[1] and out[4] == history[5]
    # The call reads as a sentence, not JSON: a small model copies JSON from its history.
    assert out[2].content == "Let me look this up with get_weather (city: Paris, days: 2)."
    assert not out[2].tool_calls and not parse_calls(out[2].content or "", TOOLS)
    # Results of one turn are one user message (templates want turns to alternate).
    assert out[3].content == (
        "The result of get_weather is: sunny, 21C\nThe result of the function is: no name"
    )
    assert all(m.tool_call_id is None for m in out)


def test_a_trailing_tool_result_asks_for_a_plain_answer() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    history = (
        Message(role="user", content="weather?"),
        Message(role="assistant", content="Checking.", tool_calls=(call,)),
        Message(role="tool", tool_call_id="call_1", name="get_weather", content="sunny"),
    )
    out = rewrite_history(history)
    assert out[1].content == "Checking. Let me look this up with get_weather (city: Paris)."
    assert out[-1].role == "user"
    assert out[-1].content == f"The result of get_weather is: sunny\n\n{ANSWER_NUDGE}"


def test_rewrite_history_with_several_calls_in_one_turn() -> None:
    calls = (
        ToolCall(id="a", name="get_weather", arguments={"city": "Rome"}),
        ToolCall(id="b", name="get_time"),
    )
    [out] = rewrite_history((Message(role="assistant", tool_calls=calls),))
    assert out.content == "Let me look this up with get_weather (city: Rome) and get_time."


def test_rewrite_history_leaves_plain_history_alone() -> None:
    history = (Message(role="user", content="hi"), Message(role="assistant", content="hello"))
    assert rewrite_history(history) == list(history)
