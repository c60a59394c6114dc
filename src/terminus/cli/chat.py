"""``terminus chat``: an interactive conversation with slash commands and kept history."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from terminus.cli.chat_session import ChatSession, refuse_base_model, say, say_error
from terminus.cli.context import CliState, pass_state
from terminus.cli.generate import _params as request_params
from terminus.cli.generate import generation_options, load_extras
from terminus.cli.render import render_events
from terminus.errors import TerminusError
from terminus.types import Message

_FENCE = '"""'
_HISTORY_LINES = 1000


@click.command()
@generation_options
@pass_state
def chat(state: CliState, **kwargs: Any) -> None:
    """Talk to a model interactively; the conversation history is kept.

    Type /help for the commands: /set (system prompt, temperature, …), /show,
    /save and /load a conversation, /model to switch, /clear, /bye. A message
    between \"\"\" lines may span several lines. Ctrl-C stops the answer being
    written; Ctrl-D or /bye leaves. Typed lines are remembered across runs.

    \b
    Examples:
      terminus chat
      terminus chat -m qwen -s "Answer in French." -t 0.2
    """
    client = state.client()
    name = kwargs["model"] or client.default_model
    card = client.models.get(name)
    refuse_base_model(card.id, card.capability, name)  # before a load that cannot help
    session = ChatSession(client, card.id, system=kwargs["system"], params=request_params(kwargs))
    session.stats = kwargs["stats"]
    session.context_length = kwargs["context_length"]
    session.check()  # reject bad flags before loading
    extras = load_extras(kwargs)
    session.model = client.load_model(card.id, context_length=session.context_length, **extras).id
    interactive = sys.stdin.isatty()
    history_file = _start_history(Path(client.home)) if interactive else None
    say(f"chatting with {session.model}; /help for commands, /bye to leave")
    try:
        for text, fenced in _messages(interactive):
            if text.startswith("/") and not fenced:
                if not session.command(text):
                    return
                continue
            _answer(session, text)
    finally:
        if history_file is not None:
            _save_history(history_file)


def _answer(session: ChatSession, text: str) -> None:
    images = tuple(session.pending_images)
    session.pending_images.clear()
    session.messages.append(Message(role="user", content=text, images=images))
    stream = session.client.completion(
        model=session.model, messages=session.history(), **session.params
    )
    try:
        render_events(stream, as_json=False, show_stats=session.stats)
    except KeyboardInterrupt:
        stream.cancel()
        say("\n[stopped]")
    except TerminusError as exc:  # e.g. the context is full: say so and keep the session
        say_error(exc.one_line())
        session.messages.pop()
        return
    answer = stream.result()
    if answer.text:
        session.messages.append(answer.message())
    else:
        session.messages.pop()


def _messages(interactive: bool) -> Iterator[tuple[str, bool]]:
    """Each message the user writes, and whether it was fenced: one line, or the lines
    between \"\"\" fences (never a command, even when it starts with /)."""
    while True:
        line = _read(">>> ", interactive)
        if line is None:
            return
        text = line.strip()
        fenced = text.startswith(_FENCE)
        if fenced:
            body = _fenced(text[len(_FENCE) :], interactive)
            if body is None:
                return
            text = body.strip()
        if text:
            yield text, fenced


def _fenced(first: str, interactive: bool) -> str | None:
    if first.rstrip().endswith(_FENCE):  # """one line"""
        return first.rstrip()[: -len(_FENCE)]
    lines = [first] if first else []
    while True:
        line = _read("... ", interactive)
        if line is None:
            return None
        if line.rstrip().endswith(_FENCE):
            lines.append(line.rstrip()[: -len(_FENCE)])
            return "\n".join(lines)
        lines.append(line)


def _read(prompt: str, interactive: bool) -> str | None:
    """A line from the user, None at end of input; a prompt only on a terminal."""
    try:
        if interactive:
            return input(prompt)  # readline's editing and history
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None
    except EOFError:
        click.echo(err=True)
        return None
    except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, as in a shell
        click.echo(err=True)
        return ""


def _start_history(home: Path) -> Path | None:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input, no history
        return None
    path = home / "chat_history"
    readline.set_history_length(_HISTORY_LINES)
    with contextlib.suppress(OSError):  # the first run, or an unreadable file: start empty
        readline.read_history_file(path)
    return path


def _save_history(path: Path) -> None:
    import readline

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
        path.chmod(0o600)  # what people type is theirs alone
    except OSError as exc:
        say_error(f"could not save the input history to {path}: {exc}")
