"""A real ``terminus serve`` on SmolLM2 + its colour projector, driven by the official
``openai`` and ``ollama`` clients, and ``terminus run --image``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest
from images import data_url, square
from liveserver import LiveServer, terminus
from visionkit import VISION_MODEL

pytestmark = pytest.mark.real

SYSTEM = "You are a helpful assistant."
QUESTION = "What colour is this picture?"
GREEDY = {"temperature": 0.0, "seed": 7, "max_tokens": 12}


@pytest.fixture(scope="module")
def server(vision_home: Path) -> Iterator[LiveServer]:
    live = LiveServer(vision_home, ["--model", VISION_MODEL]).start()
    yield live
    live.stop()


@pytest.fixture
def oai(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture
def olla(server: LiveServer) -> Iterator[ollama.Client]:
    with ollama.Client(host=server.url) as client:
        yield client


def test_openai_chat_with_an_image_url(oai: openai.OpenAI) -> None:
    client = oai
    reply = client.chat.completions.create(
        model=VISION_MODEL,
        messages=[
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": data_url(square("red"))}},
                    {"type": "text", "text": QUESTION},
                ],
            },
        ],
        **GREEDY,  # type: ignore[arg-type]
    )
    assert "red" in (reply.choices[0].message.content or "").lower()
    models = {m.id: m for m in client.models.list()}
    assert "vision" in (models[VISION_MODEL].model_extra or {})["capabilities"]


def test_openai_errors_for_images(oai: openai.OpenAI) -> None:
    client = oai
    image = {"type": "image_url", "image_url": {"url": data_url(square("red"))}}
    with pytest.raises(openai.BadRequestError, match="smollm2-135m-instruct cannot read images"):
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": [image]}], max_tokens=4
        )
    broken = {"type": "image_url", "image_url": {"url": data_url(square("red")[:120])}}
    with pytest.raises(openai.BadRequestError, match="truncated"):
        client.chat.completions.create(
            model=VISION_MODEL, messages=[{"role": "user", "content": [broken]}], max_tokens=4
        )


def test_openai_responses_with_an_input_image(oai: openai.OpenAI) -> None:
    client = oai
    response = client.responses.create(
        model=VISION_MODEL,
        instructions=SYSTEM,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": data_url(square("red")), "detail": "auto"},
                    {"type": "input_text", "text": QUESTION},
                ],
            }
        ],
        temperature=0.0,
        max_output_tokens=12,
    )
    assert "red" in response.output_text.lower()


def test_ollama_chat_with_images(olla: ollama.Client, tmp_path: Path) -> None:
    picture = tmp_path / "red.png"
    picture.write_bytes(square("red"))
    client = olla
    reply = client.chat(
        model=VISION_MODEL,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION, "images": [str(picture)]},
        ],
        options={"temperature": 0, "seed": 7, "num_predict": 12},
    )
    assert "red" in reply.message.content.lower()
    assert "vision" in client.show(VISION_MODEL).capabilities
    with pytest.raises(ollama.ResponseError, match="images.0"):
        client.chat(
            model=VISION_MODEL,
            messages=[
                {"role": "user", "content": "?", "images": [base64.b64encode(b"junk").decode()]}
            ],
        )


def test_cli_run_with_an_image(vision_home: Path, tmp_path: Path) -> None:
    picture = tmp_path / "red.png"
    picture.write_bytes(square("red"))
    args = ["run", "-m", VISION_MODEL, "-s", SYSTEM, "-t", "0", "-n", "12", "--seed", "7"]
    done = terminus(vision_home, *args, QUESTION, "--image", str(picture))
    assert done.returncode == 0, done.stderr
    assert "red" in done.stdout.lower()
    (tmp_path / "half.png").write_bytes(square("red")[:100])
    broken = terminus(vision_home, *args, QUESTION, "--image", str(tmp_path / "half.png"))
    assert broken.returncode == 22
    assert "truncated" in broken.stderr
    blind = terminus(vision_home, "run", "-m", "smollm2", QUESTION, "--image", str(picture))
    assert blind.returncode != 0
    assert "smollm2-135m-instruct cannot read images" in blind.stderr
    listed = terminus(vision_home, "models", "list")
    assert any(
        VISION_MODEL in line and "chat+vision" in line for line in listed.stdout.splitlines()
    )
    doctor = terminus(vision_home, "doctor")
    assert f"models: {VISION_MODEL}" in doctor.stdout
