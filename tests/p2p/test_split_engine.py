"""A split model behind the ordinary model interface, driven through a scripted host program.

The host here is a small Python script speaking the real host's stdin/stdout protocol (the
real one needs the RPC build: ``test_split.py`` runs it). It answers with the words of what it
was sent, so the tests see exactly which messages and sampling settings reached it.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from fakecards import fake_card

from terminus.engines.base import LoadOptions
from terminus.errors import CapabilityError, InvalidParameterError
from terminus.models.card import ModelCard
from terminus.p2p.identity import Identity
from terminus.p2p.rpc_binaries import BIN_ENV, HOST
from terminus.p2p.split import SplitModel
from terminus.p2p.split_engine import SplitChatModel, split_workers
from terminus.types import (
    CancelToken,
    ChatRequest,
    ContentDelta,
    Done,
    GenerationParams,
    Message,
    Stats,
    TextRequest,
    Tool,
)

# a 1x1 PNG, base64 (the shape Message.images holds)
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)

HOST_SCRIPT = r"""
import select, sys
out = sys.stdout
out.write("READY 30 0\n"); out.flush()
inp = sys.stdin.buffer
while True:
    header = inp.readline().decode()
    if not header:
        break
    fields = header.split()
    if fields[0] == "CANCEL":
        continue
    kind, max_tokens, nbytes = fields[0], int(fields[1]), int(fields[2])
    payload = inp.read(nbytes).decode()
    if kind == "MSGS":
        parts = payload.split("\0")[:-1]
        said = " ".join(f"{r}:{c}" for r, c in zip(parts[::2], parts[1::2]))
    else:
        said = f"{kind}:{payload}"
    words = (said + " | " + " ".join(fields[3:])).split(" ")
    if "EXCEED" in payload:
        out.write("X prompt and answer exceed the context\n"); out.flush(); continue
    sent, reason = 0, "length"
    for word in words:
        if sent == max_tokens:
            break
        piece = (word + " ").encode()
        out.write(f"T {sent} {piece.hex()}\n"); out.flush()
        sent += 1
        if "SLOW" in payload and select.select([sys.stdin], [], [], 0.05)[0]:
            inp.readline(); reason = "cancelled"; break
    else:
        reason = "stop"
    out.write(f"E 7 {sent} {reason}\n"); out.flush()
"""


@pytest.fixture
def host_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / HOST
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(HOST_SCRIPT))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    os.utime(script, (2**31, 2**31))  # newer than the host's source: nothing to relink
    monkeypatch.setenv(BIN_ENV, str(folder))
    return folder


@pytest.fixture
def card(tmp_path: Path) -> ModelCard:
    return fake_card(tmp_path / "cards", "splitty", system_prompt="Be brief.")


@pytest.fixture
def model(host_bin: Path, card: ModelCard, tmp_path: Path, smollm2_gguf: Path):  # type: ignore[no-untyped-def]
    split = SplitModel(smollm2_gguf, [], Identity.generate(), tmp_path).start()
    chat = SplitChatModel(card, split, context_length=512, memory_bytes=1)
    yield chat
    chat.close()


def _chat(model: SplitChatModel, text: str, **params: object) -> list[object]:
    request = ChatRequest(
        model="splitty",
        messages=(Message(role="user", content=text),),
        params=GenerationParams(**params),  # type: ignore[arg-type]
    )
    return list(model.chat(request, CancelToken()))


def _text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, ContentDelta))


def test_the_conversation_and_sampling_reach_the_host(model: SplitChatModel) -> None:
    events = _chat(model, "hello there", temperature=0.5, top_k=7, top_p=0.9, seed=42)
    assert _text(events) == "system:Be brief. user:hello there | 0.5 0.9 7 42 "
    stats, done = events[-2], events[-1]
    assert isinstance(stats, Stats) and stats.prompt_tokens == 7 and stats.completion_tokens == 9
    assert isinstance(done, Done) and done.stop_reason == "stop"


def test_unset_sampling_takes_llama_cpp_defaults_and_greedy_is_temperature_zero(
    model: SplitChatModel,
) -> None:
    assert _text(_chat(model, "a")).endswith("| 0.8 0.95 40 4294967295 ")
    assert _text(_chat(model, "a", temperature=0)).endswith("| 0 0.95 40 4294967295 ")


def test_max_tokens_and_stop_strings(model: SplitChatModel) -> None:
    events = _chat(model, "one two three", max_tokens=3)
    assert _text(events) == "system:Be brief. user:one "
    assert isinstance(events[-1], Done) and events[-1].stop_reason == "length"
    # the stop string spans two tokens: nothing of it is ever sent
    events = _chat(model, "one two three", stop=["two thr"])
    assert _text(events) == "system:Be brief. user:one "
    assert isinstance(events[-1], Done) and events[-1].stop_reason == "stop"


def test_cancel_stops_the_host_and_the_next_request_starts_clean(model: SplitChatModel) -> None:
    cancel = CancelToken()
    request = ChatRequest(
        model="splitty",
        messages=(Message(role="user", content="SLOW " + "word " * 200),),
    )
    stream = model.chat(request, cancel)
    assert isinstance(next(stream), ContentDelta)
    cancel.cancel()
    rest = list(stream)
    assert isinstance(rest[-1], Done) and rest[-1].stop_reason == "cancelled"
    assert _text(_chat(model, "after")).startswith("system:Be brief. user:after")


def test_a_stream_left_early_does_not_leak_into_the_next(model: SplitChatModel) -> None:
    stream = model.chat(
        ChatRequest(model="splitty", messages=(Message(role="user", content="SLOW a b c d"),)),
        CancelToken(),
    )
    next(stream)
    stream.close()  # a client that went away
    assert _text(_chat(model, "next one")).startswith("system:Be brief. user:next one")


def test_raw_completion_and_a_context_overflow(model: SplitChatModel) -> None:
    events = list(model.complete(TextRequest(model="splitty", prompt="Once upon"), CancelToken()))
    assert _text(events).startswith("GEN:Once upon")
    from terminus.errors import ContextLengthExceededError

    with pytest.raises(ContextLengthExceededError, match="context of 512"):
        _chat(model, "EXCEED")


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest(
            model="splitty",
            messages=(Message(role="user", content="weather?"),),
            tools=(Tool(name="weather"),),
        ),
        ChatRequest(
            model="splitty",
            messages=(Message(role="user", content="x", images=(PNG_B64,)),),
        ),
        ChatRequest(
            model="splitty",
            messages=(Message(role="user", content="x"),),
            params=GenerationParams(top_logprobs=3),
        ),
    ],
    ids=["tools", "images", "logprobs"],
)
def test_what_the_host_cannot_do_is_a_typed_error(
    model: SplitChatModel, request_: ChatRequest
) -> None:
    with pytest.raises(CapabilityError, match="split"):
        list(model.chat(request_, CancelToken()))


def test_parameters_the_host_does_not_apply_are_refused(model: SplitChatModel) -> None:
    with pytest.raises(InvalidParameterError, match="repeat_penalty"):
        _chat(model, "x", repeat_penalty=1.3)


def test_worker_refs_are_checked() -> None:
    assert split_workers(" a, b ,") == ["a", "b"]
    for bad in ("", [], [3], 5):
        with pytest.raises(InvalidParameterError):
            split_workers(bad)


def test_the_split_option_picks_the_split_engine_and_a_mismatch_is_refused(
    tmp_path: Path,
) -> None:
    from terminus import Terminus

    with Terminus(memory_budget="1G") as t:
        t.catalog.register(fake_card(tmp_path / "cards", "plain"))
        assert t.manager._engine_for(t.models.get("plain"), LoadOptions()).name == "fake"
        split = LoadOptions(extra={"split": ["x"]})
        assert t.manager._engine_for(t.models.get("plain"), split).name == "llamacpp-split"
        t.load_model("plain")
        with pytest.raises(InvalidParameterError, match="loaded already on the fake engine"):
            t.load_model("plain", split=["terminus:node/" + "ab" * 32])
