"""/v1/audio/speech, /v1/audio/transcriptions and /v1/audio/translations with the openai SDK
on a real server bound to 127.0.0.1, on the real Piper and Whisper models."""

from __future__ import annotations

import io
import socket
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from terminus import Terminus
from terminus.server.app import create_app
from terminus.server.settings import ServerSettings

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    home = tmp_path_factory.mktemp("terminus-audio-api")
    client = Terminus(home=home, allow_download=False, memory_budget="4G")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(client, ServerSettings(threads=1)),
        host="127.0.0.1",
        port=port,
        log_level="error",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=30)
    client.close()


def test_speech_then_transcription_with_the_openai_sdk(base_url: str, tmp_path: Path) -> None:
    from openai import OpenAI

    api = OpenAI(base_url=base_url, api_key="unused-on-loopback")
    audio = api.audio.speech.create(
        model="en_us-joe-medium",
        voice="alloy",
        input="The airplane landed safely.",
        response_format="wav",
    )
    wav = audio.read()
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getframerate() == 22050 and reader.getnframes() > 22050
    path = tmp_path / "speech.wav"
    path.write_bytes(wav)
    with path.open("rb") as fh:
        text = api.audio.transcriptions.create(model="whisper-tiny.en", file=fh)
    assert text.text.lower().strip(" .") == "the airplane landed safely"
    with path.open("rb") as fh:
        verbose = api.audio.transcriptions.create(
            model="whisper-tiny.en",
            file=fh,
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
    assert verbose.language == "en"
    assert [w.word.lower() for w in verbose.words][:2] == ["the", "airplane"]
    with path.open("rb") as fh:
        srt = api.audio.transcriptions.create(
            model="whisper-tiny.en", file=fh, response_format="srt"
        )
    assert str(srt).startswith("1\n00:00:00,000 --> ")


def test_errors_in_openai_shape(base_url: str) -> None:
    not_audio = httpx.post(
        f"{base_url}/audio/transcriptions",
        data={"model": "whisper-tiny.en"},
        files={"file": ("notes.wav", b"plain text, not audio" * 10)},
    )
    assert not_audio.status_code == 415 and not_audio.json()["error"]["code"] == "invalid_audio"
    no_file = httpx.post(f"{base_url}/audio/transcriptions", data={"model": "whisper-tiny.en"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    mp3 = httpx.post(
        f"{base_url}/audio/speech",
        json={
            "model": "en_us-joe-medium",
            "input": "hi",
            "voice": "alloy",
            "response_format": "mp3",
        },
    )
    assert mp3.status_code == 400 and mp3.json()["error"]["param"] == "response_format"
    wrong = httpx.post(
        f"{base_url}/audio/speech", json={"model": "whisper-tiny.en", "input": "hi", "voice": "x"}
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "capability_not_supported"
