"""Bad input fails early, with its own typed error that also inherits the matching builtin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from terminus import Terminus, errors
from terminus.engines.fake import FakeEngine
from terminus.errors import (
    CapabilityError,
    ContextLengthExceededError,
    InvalidParameterError,
    InvalidSchemaError,
    ModelNotFoundError,
    TerminusError,
)
from terminus.models.card import ModelCard
from terminus.runtime.validation import check_json_schema

FakeCardFactory = Callable[..., ModelCard]


# --- the error tree ---------------------------------------------------------------------

BUILTIN_PARENT = {
    errors.ModelNotFoundError: KeyError,
    errors.InvalidModelFileError: ValueError,
    errors.NotGGUFError: ValueError,
    errors.TruncatedModelError: ValueError,
    errors.CorruptTensorDataError: ValueError,
    errors.ChecksumMismatchError: ValueError,
    errors.SourceUnavailableError: ConnectionError,
    errors.ModelNotCachedError: ConnectionError,
    errors.OfflineError: ConnectionError,
    errors.RemoteModelNotFoundError: KeyError,
    errors.GatedModelError: PermissionError,
    errors.InsufficientMemoryError: MemoryError,
    errors.ContextLengthExceededError: ValueError,
    errors.InvalidParameterError: ValueError,
    errors.InvalidSchemaError: ValueError,
    errors.CapabilityError: ValueError,
    errors.EngineUnavailableError: RuntimeError,
    errors.EngineError: RuntimeError,
    errors.ModelBusyError: RuntimeError,
    errors.CacheLockTimeoutError: TimeoutError,
    errors.WorkspaceNotFoundError: KeyError,
    errors.DocumentNotFoundError: KeyError,
    errors.WorkspaceModelMismatchError: ValueError,
    errors.UnsupportedDocumentError: ValueError,
    errors.DocumentReadError: OSError,
    errors.InputFileError: OSError,
    errors.EmptyDocumentError: ValueError,
    errors.DimensionMismatchError: ValueError,
    errors.InvalidAudioError: ValueError,
    errors.InvalidImageError: ValueError,
    errors.ChatImageError: ValueError,
    errors.UnsupportedLanguageError: ValueError,
    errors.BenchmarkDataError: ValueError,
    errors.EvalRunNotFoundError: FileNotFoundError,
    errors.IncomparableRunsError: ValueError,
    errors.JudgeOutputError: RuntimeError,
    errors.DatasetError: ValueError,
    errors.UnsupportedArchitectureError: ValueError,
    errors.AdapterMismatchError: ValueError,
    errors.UnknownQuantizationError: ValueError,
    errors.CheckpointError: ValueError,
    errors.WorkerCrashedError: RuntimeError,
    errors.GenerationCancelledError: RuntimeError,
    errors.PeerUnavailableError: ConnectionError,
    errors.PeerRefusedError: PermissionError,
    errors.PeerBusyError: RuntimeError,
    errors.ToolServerError: ConnectionError,
}


def test_every_exported_error_is_covered() -> None:
    exported = {getattr(errors, name) for name in errors.__all__} - {TerminusError}
    assert exported == set(BUILTIN_PARENT)


@pytest.mark.parametrize("cls", list(BUILTIN_PARENT), ids=lambda c: c.__name__)
def test_each_error_is_terminus_and_builtin(cls: type[TerminusError]) -> None:
    exc = cls("boom", hint="try this")
    assert isinstance(exc, TerminusError)
    assert isinstance(exc, BUILTIN_PARENT[cls])
    assert str(exc) == "boom"  # not KeyError's repr-quoted form
    assert exc.one_line() == "boom (try this)"
    assert exc.code and exc.code != TerminusError.code


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in BUILTIN_PARENT]
    assert len(codes) == len(set(codes))


def test_families_have_distinct_exit_codes() -> None:
    """Direct children of TerminusError each get an exit code of their own; subclasses share."""
    families = [cls for cls in BUILTIN_PARENT if TerminusError in cls.__bases__]
    exit_codes = [cls.exit_code for cls in families]
    assert len(exit_codes) == len(set(exit_codes)), exit_codes
    # 0 is success, 1 an unexpected crash, 2 click's usage error.
    assert all(code > 2 for code in exit_codes)
    for cls in BUILTIN_PARENT:
        family = next(f for f in families if issubclass(cls, f))
        assert cls.exit_code == family.exit_code


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.ModelNotFoundError, 404),
        (errors.InvalidParameterError, 400),
        (errors.InvalidSchemaError, 400),
        (errors.CapabilityError, 400),
        (errors.ContextLengthExceededError, 400),
        (errors.ModelBusyError, 409),
        (errors.InsufficientMemoryError, 507),
        (errors.SourceUnavailableError, 503),
        (errors.EngineUnavailableError, 503),
        (errors.EngineError, 500),
    ],
)
def test_http_status(cls: type[TerminusError], status: int) -> None:
    assert cls.http_status == status


def test_client_errors_are_4xx_and_server_errors_5xx() -> None:
    for cls in BUILTIN_PARENT:
        if issubclass(cls, InvalidParameterError | ModelNotFoundError):
            assert 400 <= cls.http_status < 500, cls
        if issubclass(cls, errors.EngineError | errors.SourceUnavailableError):
            assert cls.http_status >= 500, cls


# --- model names ---------------------------------------------------------------------------


def test_unknown_model_is_a_key_error_with_a_hint(client: Terminus) -> None:
    with pytest.raises(KeyError) as info:
        client.catalog.get("smollm")
    assert isinstance(info.value, ModelNotFoundError)
    assert info.value.hint is not None and "did you mean" in info.value.hint
    assert "smollm2" in info.value.hint


def test_unrelated_name_hints_at_the_list(client: Terminus) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        client.catalog.get("zzzzzzzzzzzz")
    assert "did you mean" not in (info.value.hint or "")


def test_names_are_case_and_space_insensitive(client: Terminus) -> None:
    assert client.catalog.get("  SmolLM2 ").id == "smollm2-135m-instruct"


def test_unknown_model_in_a_completion_loads_nothing(client: Terminus) -> None:
    with pytest.raises(ModelNotFoundError):
        client.completion("hi", model="no-such-model").result()
    assert client.loaded_models() == []


# --- generation parameters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -1},
        {"temperature": 100},
        {"top_p": 2},
        {"top_p": 0},
        {"top_k": -1},
        {"min_p": 1.5},
        {"repeat_penalty": 0},
        {"max_tokens": 0},
        {"max_tokens": -5},
        {"stop": ""},
        {"stop": ["ok", ""]},
        {"stop": [f"s{i}" for i in range(17)]},
        {"seed": -1},
        {"seed": 2**32},
        {"temperature": "hot"},
    ],
    ids=repr,
)
def test_invalid_params_fail_before_any_load(fake_client: Terminus, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError) as info:
        fake_client.completion("hi", model="fake-chat", **kwargs)
    assert type(info.value) is InvalidParameterError
    assert FakeEngine.loads == [] and FakeEngine.calls == []
    assert not fake_client.cache.is_cached(fake_client.catalog.get("fake-chat"))


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user", "content": "hi", "surprise": 1}],
    ],
    ids=["empty", "bad-role", "extra-key"],
)
def test_invalid_messages(fake_client: Terminus, messages: Any) -> None:
    with pytest.raises(InvalidParameterError):
        fake_client.completion(messages, model="fake-chat")
    assert FakeEngine.loads == []


def test_invalid_tool_name(fake_client: Terminus) -> None:
    with pytest.raises(InvalidParameterError):
        fake_client.completion("hi", model="fake-chat", tools=[{"name": "has spaces"}])


def test_response_format_of_the_wrong_kind(fake_client: Terminus) -> None:
    with pytest.raises(InvalidParameterError):
        fake_client.completion("hi", model="fake-chat", response_format="json")  # type: ignore[arg-type]


def test_valid_edge_params_are_accepted(fake_client: Terminus) -> None:
    result = fake_client.completion(
        "a b", model="fake-chat", temperature=0, top_p=1, seed=0, max_tokens=1, top_k=0
    ).result()
    assert result.stop_reason == "length"


def test_tool_choice_naming_an_unknown_tool(fake_client: Terminus) -> None:
    tool = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
    with pytest.raises(InvalidParameterError, match="nope"):
        fake_client.completion("hi", model="fake-chat", tools=[tool], tool_choice="nope").result()
    assert FakeEngine.loads == []


# --- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "objectx"},
        {"properties": 5},
        {"type": "object", "required": "name"},
        {"type": "array", "items": 3},
        {"enum": "not-a-list"},
    ],
    ids=repr,
)
def test_invalid_response_schema(fake_client: Terminus, schema: dict[str, Any]) -> None:
    stream = fake_client.completion("hi", model="fake-chat", response_format=schema)
    with pytest.raises(InvalidSchemaError):
        stream.result()
    assert FakeEngine.loads == []  # checked before the model is touched


def test_invalid_openai_shaped_schema(fake_client: Terminus) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 7}}}
    with pytest.raises(InvalidSchemaError):
        fake_client.completion("hi", model="fake-chat", response_format=fmt).result()


def test_invalid_tool_schema(fake_client: Terminus) -> None:
    tool = {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}
    with pytest.raises(InvalidSchemaError):
        fake_client.completion("hi", model="fake-chat", tools=[tool]).result()
    assert FakeEngine.loads == []


def test_schema_checks_directly() -> None:
    check_json_schema({"type": "object", "properties": {"a": {"type": "integer"}}})
    with pytest.raises(InvalidSchemaError):
        check_json_schema(["not", "a", "dict"])
    with pytest.raises(InvalidSchemaError, match="properties"):
        check_json_schema({"properties": 5})


# --- runtime errors ----------------------------------------------------------------------------------


def test_prompt_longer_than_context(fake_client: Terminus) -> None:
    # fake-chat's context holds 64 words
    with pytest.raises(ContextLengthExceededError) as info:
        fake_client.completion("word " * 65, model="fake-chat").result()
    assert isinstance(info.value, ValueError)
    assert fake_client.completion("word " * 64, model="fake-chat", max_tokens=1).text == "word"


def test_context_length_follows_load_options(fake_client: Terminus) -> None:
    fake_client.load_model("fake-chat", context_length=4)
    with pytest.raises(ContextLengthExceededError):
        fake_client.completion("one two three four five", model="fake-chat").result()


def test_chat_on_a_non_chat_card(client: Terminus, make_fake_card: FakeCardFactory) -> None:
    client.catalog.register(make_fake_card("fake-embed", capability="embed"))
    with pytest.raises(CapabilityError) as info:
        client.completion("hi", model="fake-embed").result()
    assert isinstance(info.value, ValueError)
    assert FakeEngine.loads == [] and client.loaded_models() == []
    assert not client.cache.is_cached(client.catalog.get("fake-embed"))  # nothing fetched


def test_chat_on_a_base_model_points_at_text_completion(
    client: Terminus, make_fake_card: FakeCardFactory
) -> None:
    client.catalog.register(make_fake_card("fake-base", capability="completion"))
    with pytest.raises(CapabilityError) as info:
        client.completion("hi", model="fake-base").result()
    assert info.value.hint and "text_completion" in info.value.hint
    assert FakeEngine.loads == []


@pytest.mark.parametrize("model", ["whisper-base", "all-minilm-l6-v2", "gemma-3-270m"])
def test_chat_on_a_builtin_non_chat_model(client: Terminus, model: str) -> None:
    # Refused from the card alone: no engine lookup, no download, no load.
    with pytest.raises(CapabilityError):
        client.completion("hi", model=model).result()
    assert not (client.home / "blobs").exists()
    assert client.loaded_models() == []
