"""``terminus chat`` slash commands on the fake engine (input piped, as a script would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card

from terminus.cli.main import cli
from terminus.engines.fake import FakeEngine
from terminus.models.catalog import Catalog


@pytest.fixture()
def echo_model(isolated_home: Path, tmp_path: Path) -> str:
    """A chat model that echoes the last user message, and a second one to switch to."""
    cards = Catalog(isolated_home / "cards")
    cards.save_user_card(fake_card(tmp_path / "w", "echo-chat", user_added=True))
    cards.save_user_card(fake_card(tmp_path / "w", "other-chat", user_added=True))
    return "echo-chat"


def chat(*lines: str, args: tuple[str, ...] = ()) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["chat", *args], input="".join(f"{x}\n" for x in lines))
    return result.exit_code, result.stdout, result.stderr


def test_help_and_unknown_commands_never_reach_the_model(echo_model: str) -> None:
    code, out, err = chat("/help", "/frobnicate now", "/bye", args=("-m", echo_model))
    assert code == 0, err
    assert FakeEngine.calls == []
    assert "/set" in out and "/save NAME" in out and '"""' in out
    assert "error: unknown command /frobnicate; type /help" in err


def test_set_changes_what_the_next_request_carries(echo_model: str) -> None:
    code, out, err = chat(
        "/set system Answer in one word.",
        "/set temperature 0.25",
        "/set parameter top_p 0.5",  # ollama's spelling
        "/set num_predict 7",
        "hello",
        "/bye",
        args=("-m", echo_model),
    )
    assert code == 0, err
    [request] = FakeEngine.calls
    assert request.messages[0].role == "system"
    assert request.messages[0].content == "Answer in one word."
    assert request.params.temperature == 0.25
    assert request.params.top_p == 0.5
    assert request.params.max_tokens == 7


def test_set_alone_shows_the_settings_and_bad_values_are_refused(echo_model: str) -> None:
    code, out, err = chat(
        "/set temperature -4",
        "/set temperature warm",
        "/set colour blue",
        "/set top_k 5",
        "/set",
        "/bye",
        args=("-m", echo_model),
    )
    assert code == 0, err
    assert "error: invalid request" in err and "temperature" in err  # the engine's own check
    assert "temperature must be a number, not 'warm'" in err
    assert "no setting named 'colour'" in err
    settings = dict(
        line.split(None, 1) for line in out.splitlines() if line.startswith("  ") and line.strip()
    )
    assert settings["top_k"] == "5"
    assert settings["temperature"] == "(model default)"  # the refused values never applied


def test_show_names_the_model(echo_model: str) -> None:
    code, out, err = chat(
        "/show", "/show system", "/show nonsense", "/bye", args=("-m", echo_model)
    )
    assert code == 0, err
    assert "echo-chat" in out and "fake" in out  # the model and its engine
    assert "(no system prompt)" in out
    assert "/show nonsense: show what?" in err


def test_multiline_input_is_one_message(echo_model: str) -> None:
    code, out, err = chat('"""first line', "/not a command here", 'last line"""', "/bye",
                          args=("-m", echo_model))  # fmt: skip
    assert code == 0, err
    [request] = FakeEngine.calls
    assert request.messages[-1].content == "first line\n/not a command here\nlast line"


def test_clear_forgets_the_conversation_but_keeps_the_system_prompt(echo_model: str) -> None:
    code, _, err = chat("one", "/clear", "two", "/bye", args=("-m", echo_model, "-s", "Be brief."))
    assert code == 0, err
    assert [m.role for m in FakeEngine.calls[1].messages] == ["system", "user"]
    assert FakeEngine.calls[1].messages[1].content == "two"


def test_save_and_load_a_conversation(echo_model: str, isolated_home: Path) -> None:
    code, _, err = chat(
        "/set system Speak like a pirate.", "/set seed 9", "remember the parrot", "/save trip",
        "/bye", args=("-m", echo_model),
    )  # fmt: skip
    assert code == 0, err
    saved = json.loads((isolated_home / "chats" / "trip.json").read_text())
    assert saved["model"] == "echo-chat" and saved["system"] == "Speak like a pirate."
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"]
    assert not list((isolated_home / "chats").glob(".*partial"))
    assert (isolated_home / "chats" / "trip.json").stat().st_mode & 0o077 == 0

    FakeEngine.calls.clear()
    code, _, err = chat("/load trip", "what was it?", "/bye", args=("-m", "other-chat"))
    assert code == 0, err
    [request] = FakeEngine.calls
    assert request.model == "echo-chat"  # the saved conversation's model
    assert request.params.seed == 9
    assert [m.content for m in request.messages] == [
        "Speak like a pirate.",
        "remember the parrot",
        "remember the parrot",
        "what was it?",
    ]


def test_load_and_save_errors_keep_the_session(echo_model: str) -> None:
    code, _, err = chat("/load nothing-here", "/save ../escape", "hi", "/bye",
                        args=("-m", echo_model))  # fmt: skip
    assert code == 0
    assert "no saved conversation named 'nothing-here'" in err
    assert "conversation name '../escape'" in err
    assert len(FakeEngine.calls) == 1


def test_model_switches_and_refuses_what_cannot_chat(echo_model: str, tmp_path: Path) -> None:
    code, _, err = chat(
        "hi", "/model other-chat", "again", "/model no-such-model", "/model gemma-3-270m",
        "/bye", args=("-m", echo_model),
    )  # fmt: skip
    assert code == 0, err
    assert [c.model for c in FakeEngine.calls] == ["echo-chat", "other-chat"]
    assert len(FakeEngine.calls[1].messages) == 3  # the conversation came along
    assert "unknown model 'no-such-model'" in err
    assert "gemma-3-270m is a base model" in err


def test_a_base_model_is_refused_before_loading(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["--offline", "chat", "-m", "gemma-3-270m"], input="hi\n")
    assert result.exit_code == 9
    assert "terminus run -m gemma-3-270m" in result.stderr
    assert not (isolated_home / "blobs").exists()  # nothing fetched, nothing loaded


def test_switching_unloads_the_previous_model_and_keeps_the_context(echo_model: str) -> None:
    from terminus import Terminus
    from terminus.cli.chat_session import ChatSession
    from terminus.errors import ModelNotFoundError

    with Terminus(memory_budget="1G") as client:
        client.load_model(echo_model, context_length=128)
        session = ChatSession(client, echo_model, context_length=128)
        session.switch("other-chat")
        assert [(m.id, m.context_length) for m in client.loaded_models()] == [("other-chat", 128)]
        with pytest.raises(ModelNotFoundError):
            session.switch("nothing-like-it")
        assert session.model == "other-chat"  # a failed switch changes nothing
        assert [m.id for m in client.loaded_models()] == ["other-chat"]
