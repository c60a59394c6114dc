"""What ``terminus chat`` remembers between turns, and the slash commands that change it.

The loop that reads lines lives in :mod:`terminus.cli.chat`; this module holds the
conversation (model, system prompt, sampling settings, messages) and turns each
``/command`` into a change of that state or a message, never a prompt for the model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from terminus.errors import InvalidParameterError, TerminusError
from terminus.types import Message

if TYPE_CHECKING:
    from terminus.client.sync import Terminus

#: Settings ``/set NAME VALUE`` accepts, with the type each value is parsed as.
PARAMETERS: dict[str, Callable[[str], Any]] = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "min_p": float,
    "repeat_penalty": float,
    "seed": int,
    "max_tokens": int,
    "stop": str,
}

#: Other spellings people type (ollama's ``num_predict``, the CLI's dashes).
_SYNONYMS = {"num_predict": "max_tokens", "max-tokens": "max_tokens", "top-p": "top_p"}

_SAVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

HELP = """\
Commands (anything else is sent to the model):
  /set                      show the settings
  /set system TEXT          set the system prompt
  /set NAME VALUE           set temperature, top_p, top_k, min_p, repeat_penalty,
                            seed, max_tokens or stop (e.g. /set temperature 0.2)
  /set verbose | quiet      show or hide token counts and speed after each answer
  /unset NAME               back to the model's default (or no system prompt)
  /show                     the model and the settings
  /show info | settings | system | history
  /save NAME                save the conversation (model, settings, messages)
  /load NAME                continue a saved conversation
  /model NAME               switch model, keeping the conversation
  /image PATH               show the model this image with your next message (vision models)
  /clear                    forget the conversation (the system prompt stays)
  /bye                      leave (also /exit, /quit or Ctrl-D)
  /help                     this text
Start and end a message with \"\"\" to write several lines.
Ctrl-C stops an answer being written."""


@dataclass
class ChatSession:
    """One conversation: the model, its settings and the messages exchanged so far."""

    client: Terminus
    model: str
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stats: bool = False
    messages: list[Message] = field(default_factory=list)
    context_length: int | None = None  # as asked on the command line, for every model
    pending_images: list[str] = field(default_factory=list)  # base64, for the next message

    def history(self) -> list[Message]:
        """The messages to send: the system prompt first, then the conversation."""
        head = [Message(role="system", content=self.system)] if self.system else []
        return head + list(self.messages)

    def check(self, model: str | None = None, **params: Any) -> None:
        """Raise the error a request with these settings would get, without loading anything."""
        self.client.chat_request(
            model=model or self.model,
            messages="check",
            system=self.system,
            **{**self.params, **params},
        )

    # -- commands -----------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run one ``/command``; returns False when the user leaves."""
        name, _, rest = line[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("bye", "exit", "quit"):
            return False
        handlers: dict[str, Callable[[str], None]] = {
            "help": self._help,
            "?": self._help,
            "set": self._set,
            "unset": self._unset,
            "show": self._show,
            "save": self._save,
            "load": self._load,
            "model": self._model,
            "clear": self._clear,
            "reset": self._clear,
            "image": self._image,
        }
        handler = handlers.get(name)
        if handler is None:
            say_error(f"unknown command /{name}; type /help for the list")
            return True
        try:
            handler(rest)
        except TerminusError as exc:
            say_error(exc.one_line())
        return True

    def _help(self, _: str) -> None:
        click.echo(HELP)

    def _image(self, rest: str) -> None:
        from terminus.models.card import check_can_see
        from terminus.types.vision import prepare_image

        if not rest:
            raise InvalidParameterError("/image needs the path of a picture")
        check_can_see(self.client.catalog.get(self.model))
        self.pending_images.append(prepare_image(rest, where=rest))  # checked now, not later
        say(f"image attached ({len(self.pending_images)}); it goes with your next message")

    def _set(self, rest: str) -> None:
        if not rest:
            self._show_settings()
            return
        key, _, value = rest.partition(" ")
        key = _SYNONYMS.get(key.lower(), key.lower())
        value = value.strip()
        if key == "parameter":  # ollama's spelling: /set parameter temperature 0.2
            self._set(value)
            return
        if key in ("verbose", "quiet"):
            self.stats = key == "verbose"
            say(f"stats {'on' if self.stats else 'off'}")
            return
        if key == "system":
            if not value:
                raise InvalidParameterError("/set system needs the text of the prompt")
            self.system = _unquote(value)
            say("system prompt set")
            return
        if key not in PARAMETERS:
            raise InvalidParameterError(
                f"no setting named {key!r}",
                hint="settings: system, " + ", ".join(PARAMETERS),
            )
        if not value:
            raise InvalidParameterError(f"/set {key} needs a value")
        parsed = _parse(key, value)
        self.check(**{key: parsed})  # the engine's own range checks
        self.params[key] = parsed
        say(f"{key} = {_display(parsed)}")

    def _unset(self, rest: str) -> None:
        key = _SYNONYMS.get(rest.lower(), rest.lower())
        if key == "system":
            self.system = None
        elif key in PARAMETERS:
            self.params.pop(key, None)
        else:
            raise InvalidParameterError(f"no setting named {rest!r}")
        say(f"{key} unset")

    def _show(self, rest: str) -> None:
        what = rest.lower()
        if what in ("", "info", "model"):
            self._show_info()
        if what in ("", "settings", "parameters"):
            self._show_settings()
        if what == "system":
            click.echo(self.system or "(no system prompt)")
        if what == "history":
            for message in self.history():
                click.echo(f"{message.role}: {message.content}")
        if what not in ("", "info", "model", "settings", "parameters", "system", "history"):
            raise InvalidParameterError(
                f"/show {rest}: show what?", hint="info, settings, system or history"
            )

    def _show_info(self) -> None:
        info = self.client.models.info(self.model)
        info["size"] = self.client.models.get(self.model).size  # a property, not in the dump
        gguf = info.get("gguf") or {}
        rows = [
            ("model", info["id"]),
            ("name", info.get("name")),
            ("capability", info.get("capability")),
            ("engine", info.get("engine")),
            ("architecture", info.get("architecture") or gguf.get("architecture")),
            ("size", _size(info.get("size"))),
            ("trained context", gguf.get("context_length")),
            ("license", info.get("license")),
        ]
        for key, value in rows:
            if value not in (None, ""):
                click.echo(f"  {key:<16}{value}")

    def _show_settings(self) -> None:
        click.echo(f"  {'system':<16}{self.system if self.system else '(none)'}")
        for key in PARAMETERS:
            value = self.params.get(key)
            click.echo(f"  {key:<16}{'(model default)' if value is None else _display(value)}")
        click.echo(f"  {'stats':<16}{'on' if self.stats else 'off'}")
        click.echo(f"  {'messages':<16}{len(self.messages)}")

    def _clear(self, _: str) -> None:
        self.messages.clear()
        say("conversation cleared" + (" (the system prompt stays)" if self.system else ""))

    def _model(self, rest: str) -> None:
        if not rest:
            say(f"chatting with {self.model}; /model NAME switches")
            return
        self.switch(rest)
        say(f"now chatting with {self.model}")

    def _save(self, rest: str) -> None:
        path = conversation_path(self.client, rest)
        data = {
            "model": self.model,
            "system": self.system,
            "params": self.params,
            "messages": [m.model_dump(mode="json", exclude_none=True) for m in self.messages],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        partial.chmod(0o600)  # a conversation is private
        os.replace(partial, path)  # a crash mid-write never leaves a half conversation
        say(f"saved {len(self.messages)} message(s) as {rest}")

    def _load(self, rest: str) -> None:
        path = conversation_path(self.client, rest)
        if not path.is_file():
            saved = sorted(p.stem for p in path.parent.glob("*.json"))
            raise InvalidParameterError(
                f"no saved conversation named {rest!r}",
                hint=f"saved: {', '.join(saved)}" if saved else "save one with /save NAME",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            messages = [Message.model_validate(m) for m in data["messages"]]
            params = {k: v for k, v in dict(data.get("params") or {}).items() if k in PARAMETERS}
            model = str(data["model"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidParameterError(f"{path} is not a saved conversation: {exc}") from exc
        if model != self.model:
            self.switch(model)
        self.system = data.get("system")
        self.params = params
        self.messages = messages
        say(f"loaded {rest}: {len(messages)} message(s) with {self.model}")

    def switch(self, name: str) -> None:
        """Chat with NAME from now on; the previous model is unloaded once NAME is loaded.
        Any error (unknown, cannot chat, does not fit) leaves the session as it was."""
        card = self.client.models.get(name)
        refuse_base_model(card.id, card.capability, name)
        self.check(model=card.id)
        loaded = self.client.load_model(card.id, context_length=self.context_length).id
        if loaded != self.model:
            self.client.unload_model(self.model)  # two models rarely fit a small machine
        self.model = loaded


def refuse_base_model(card_id: str, capability: str, name: str) -> None:
    from terminus.errors import CapabilityError
    from terminus.types.common import Capability

    if capability == Capability.COMPLETION:
        raise CapabilityError(
            f"{card_id} is a base model: it continues text and has no chat template",
            hint=f'use `terminus run -m {name} "Once upon a time"`',
        )


def conversation_path(client: Terminus, name: str) -> Path:
    if not _SAVE_NAME.match(name or ""):
        raise InvalidParameterError(
            f"conversation name {name!r}: use letters, digits, '.', '-' or '_'",
            hint="e.g. /save trip-plans",
        )
    return Path(client.home) / "chats" / f"{name}.json"


def say(text: str) -> None:
    click.secho(text, err=True, dim=True)


def say_error(text: str) -> None:
    click.secho(f"error: {text}", err=True, fg="red")


def _parse(key: str, value: str) -> Any:
    if key == "stop":
        return [_unquote(value)]
    try:
        return PARAMETERS[key](value)
    except ValueError as exc:
        kind = "an integer" if PARAMETERS[key] is int else "a number"
        raise InvalidParameterError(f"{key} must be {kind}, not {value!r}") from exc


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _display(value: Any) -> str:
    return ", ".join(map(repr, value)) if isinstance(value, list) else str(value)


def _size(value: Any) -> str | None:
    from terminus.runtime.memory import format_size

    return format_size(int(value)) if value else None
