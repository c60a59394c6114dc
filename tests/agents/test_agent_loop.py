"""The tool loop with a scripted model: results, failures, limits, approval, cancellation."""

from __future__ import annotations

import threading
import time

import pytest
from scripted import ScriptedModel

from terminus.agents import Agent, AgentDone, AgentRun, AsyncAgentRun, ToolResultEvent, tool
from terminus.agents.deferred import TOOL_SEARCH
from terminus.agents.loop import FINAL_ANSWER
from terminus.errors import InvalidParameterError
from terminus.types import CancelToken, ContentDelta


def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: the first factor
        b: the second factor
    """
    return a * b


def run(agent: Agent, prompt: str = "What is 6 times 7?") -> AgentRun:
    return AgentRun(lambda cancel: agent.events(prompt, cancel))


def test_function_schema_comes_from_signature_and_docstring() -> None:
    spec = tool(multiply).spec()
    assert spec.name == "multiply"
    assert spec.description == "Multiply two numbers."
    assert spec.parameters["required"] == ["a", "b"]
    assert spec.parameters["properties"]["a"] == {
        "type": "number",
        "description": "the first factor",
    }


def test_optional_parameters_are_not_required() -> None:
    def greet(name: str, polite: bool = True) -> str:
        """Greet someone."""
        return ("Dear " if polite else "") + name

    schema = tool(greet).parameters
    assert schema["required"] == ["name"]
    assert schema["properties"]["polite"]["default"] is True


def test_loop_runs_the_call_and_returns_the_answer() -> None:
    model = ScriptedModel([("multiply", {"a": 6, "b": 7})], "Six times seven is 42.")
    events = list(run(Agent(model, "m", [multiply])))
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.content for r in results] == ["42.0"]
    assert results[0].error is None
    assert events[-1] == AgentDone(stop_reason="answer", steps=2)
    second = model.requests[1]
    tool_message = [m for m in second.messages if m.role == "tool"]
    assert tool_message[0].content == "42.0" and tool_message[0].name == "multiply"
    assert "What is 6 times 7?" in (second.messages[-1].content or "")  # the nudge restates it
    assert collect_text(events) == "Six times seven is 42."


def collect_text(events: list[object]) -> str:
    return run_result(events).text


def run_result(events: list[object]):  # type: ignore[no-untyped-def]
    from terminus.agents import collect_agent_result

    return collect_agent_result(events)


def test_a_tool_that_raises_is_reported_and_the_loop_goes_on() -> None:
    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    model = ScriptedModel([("broken", {"x": 1})], "The tool failed.")
    result = run(Agent(model, "m", [broken])).result()
    assert result.tool_results[0].error == "raised"
    assert "RuntimeError: disk on fire" in result.tool_results[0].content
    assert result.stop_reason == "answer" and result.text == "The tool failed."


def test_a_tool_that_hangs_times_out() -> None:
    release = threading.Event()

    @tool(timeout_s=0.3)
    def stuck() -> str:
        """Never returns in time."""
        release.wait(10)
        return "late"

    model = ScriptedModel([("stuck", {})], "It took too long.")
    started = time.monotonic()
    result = run(Agent(model, "m", [stuck])).result()
    release.set()
    assert result.tool_results[0].error == "timeout"
    assert time.monotonic() - started < 5
    assert result.stop_reason == "answer"


def test_a_result_that_is_not_json_is_reported() -> None:
    def odd() -> object:
        """Returns a set."""
        return {1, 2}

    result = run(Agent(ScriptedModel([("odd", {})], "No."), "m", [odd])).result()
    assert result.tool_results[0].error == "bad_result"
    assert "set" in result.tool_results[0].content


def test_arguments_that_do_not_fit_the_schema_are_reported() -> None:
    model = ScriptedModel([("multiply", {"a": "six"})], "Bad call.")
    result = run(Agent(model, "m", [multiply])).result()
    assert result.tool_results[0].error == "bad_arguments"
    assert "a:" in result.tool_results[0].content and "b:" in result.tool_results[0].content


def test_an_unknown_tool_written_as_text_is_reported() -> None:
    model = ScriptedModel('{"name": "divide", "arguments": {"a": 1}}', "I cannot divide.")
    result = run(Agent(model, "m", [multiply])).result()
    assert result.tool_results[0].error == "unknown_tool"
    assert "multiply" in result.tool_results[0].content  # the model is told what exists
    assert result.text == "I cannot divide."


def test_a_dangerous_tool_needs_approval() -> None:
    calls: list[str] = []

    @tool(dangerous=True)
    def delete(path: str) -> str:
        """Delete a file."""
        calls.append(path)
        return "deleted"

    denied = run(Agent(ScriptedModel([("delete", {"path": "x"})], "Not allowed."), "m", [delete]))
    assert denied.result().tool_results[0].error == "denied"
    assert calls == []
    seen = []
    approved = Agent(
        ScriptedModel([("delete", {"path": "y"})], "Done."),
        "m",
        [delete],
        approve=lambda call: seen.append(call.arguments) or True,
    )
    assert run(approved).result().tool_results[0].content == "deleted"
    assert calls == ["y"] and seen == [{"path": "y"}]


def test_the_step_limit_ends_the_run() -> None:
    model = ScriptedModel(*[[("multiply", {"a": i, "b": 2})] for i in range(10)])
    result = run(Agent(model, "m", [multiply], max_steps=3)).result()
    assert result.stop_reason == "step_limit"
    assert result.steps == 3 and len(result.tool_results) == 3


def test_a_repeated_call_gets_a_tool_free_answer_step() -> None:
    call = [("multiply", {"a": 6, "b": 7})]
    model = ScriptedModel(call, call, "Six times seven is 42.")
    result = run(Agent(model, "m", [multiply])).result()
    assert len(result.tool_results) == 1  # the repeat was not run again
    last = model.requests[-1]
    assert last.tools == ()
    assert "42.0" in (last.messages[-1].content or "")
    assert result.text == "Six times seven is 42."


def test_cancel_during_a_tool_ends_the_run() -> None:
    started = threading.Event()

    def slow() -> str:
        """Takes a while."""
        started.set()
        time.sleep(5)
        return "done"

    agent_run = run(Agent(ScriptedModel([("slow", {})], "never"), "m", [slow]))
    threading.Thread(target=lambda: (started.wait(5), agent_run.cancel()), daemon=True).start()
    started_at = time.monotonic()
    result = agent_run.result()
    assert time.monotonic() - started_at < 4
    assert result.stop_reason == "cancelled"


def test_constrained_mode_answers_through_final_answer() -> None:
    model = ScriptedModel(
        [("multiply", {"a": 6, "b": 7})], [(FINAL_ANSWER, {"answer": "It is 42."})]
    )
    events = list(run(Agent(model, "m", [multiply], constrained=True)))
    assert model.requests[0].tool_choice == "required"
    assert FINAL_ANSWER in [t.name for t in model.requests[0].tools]
    assert [e.text for e in events if isinstance(e, ContentDelta)] == ["It is 42."]
    assert events[-1].stop_reason == "answer"  # type: ignore[attr-defined]


def test_deferred_loading_shows_only_tool_search_until_a_search() -> None:
    def weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    others = [
        tool(lambda: 1, name=f"noise_{i}", description=f"unrelated thing {i}") for i in range(12)
    ]
    model = ScriptedModel(
        [(TOOL_SEARCH, {"query": "weather in a city"})],
        [("weather", {"city": "Lima"})],
        "It is sunny in Lima.",
    )
    result = run(Agent(model, "m", [weather, *others]), "Weather in Lima?").result()
    assert [t.name for t in model.requests[0].tools] == [TOOL_SEARCH]
    assert "weather" in result.tool_results[0].content
    assert "weather" in [t.name for t in model.requests[1].tools]
    assert result.tool_results[1].content == "sunny in Lima"
    assert result.text == "It is sunny in Lima."


def test_duplicate_and_reserved_names_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="share the name"):
        Agent(ScriptedModel(), "m", [multiply, tool(multiply)])
    with pytest.raises(InvalidParameterError, match="reserved"):
        Agent(ScriptedModel(), "m", [tool(multiply, name=FINAL_ANSWER)])
    with pytest.raises(InvalidParameterError, match="must be a function"):
        Agent(ScriptedModel(), "m", [42])


async def test_async_run_streams_the_same_events() -> None:
    model = ScriptedModel([("multiply", {"a": 2, "b": 3})], "Two times three is 6.")
    agent = Agent(model, "m", [multiply])
    events = [e async for e in AsyncAgentRun(lambda cancel: agent.events("2*3?", cancel))]
    assert any(isinstance(e, ToolResultEvent) and e.content == "6.0" for e in events)
    assert isinstance(events[-1], AgentDone) and events[-1].stop_reason == "answer"


def test_engine_error_ends_the_run_with_the_error() -> None:
    from terminus.types import Done

    def failing(request, cancel: CancelToken):  # type: ignore[no-untyped-def]
        yield Done(stop_reason="error", error="engine exploded")

    result = run(Agent(failing, "m", [multiply])).result()
    assert result.stop_reason == "error" and result.error == "engine exploded"


def test_tool_search_without_a_match_falls_back_to_the_question() -> None:
    from terminus.agents.deferred import ToolCatalog

    catalog = ToolCatalog([tool(multiply)], deferred=True)
    search = catalog.get(TOOL_SEARCH)
    assert search is not None
    text = search.invoke({"query": "37 times 12"}, 1.0, CancelToken())
    assert text == "No function matches '37 times 12'. Functions: multiply."
    catalog.context = "Please multiply 37 by 12"  # the question is searched as a fallback
    assert "You can now call" in search.invoke({"query": "37 times 12"}, 1.0, CancelToken())
    assert [t.name for t in catalog.visible()] == ["multiply"]
    fresh = ToolCatalog([tool(multiply)], deferred=True)
    found = fresh.search("multiply numbers")
    assert [t.name for t in found] == ["multiply"]


def test_a_repeated_search_leaves_only_the_found_tools() -> None:
    search = [(TOOL_SEARCH, {"query": "multiply numbers"})]
    model = ScriptedModel(search, search, [("multiply", {"a": 6, "b": 7})], "It is 42.")
    result = run(Agent(model, "m", [multiply], deferred=True)).result()
    assert [t.name for t in model.requests[2].tools] == ["multiply"]
    assert result.tool_results[-1].content == "42.0"
    assert result.text == "It is 42."
