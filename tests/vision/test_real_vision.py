"""Images through llama.cpp's multimodal engine on SmolLM2 with a real projector.

The projector (see projector_kit) maps pure colours onto SmolLM2's own colour words,
so these tests can check that an image reaches the model, changes its answer
deterministically, costs exactly the tokens the projector says, and is read as
"red" when it is red. No real vision-language model ships in a package registry,
so what a real VLM says about a photo or a line of text is not checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from images import square, text_line
from projector_kit import IMAGE_TOKENS
from visionkit import VISION_MODEL, vision_client

from terminus import Terminus
from terminus.engines.base import LoadOptions
from terminus.engines.llamacpp import LlamaCppEngine
from terminus.errors import ContextLengthExceededError

pytestmark = pytest.mark.real

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
QUESTION = "What colour is this picture?"
GREEDY = {"temperature": 0.0, "seed": 7, "max_tokens": 12, "cache_prompt": False}


def _ask(client: Terminus, *images: bytes, text: str = QUESTION, **kwargs: object) -> object:
    parts: list[dict[str, object]] = [{"type": "image", "image": i} for i in images]
    parts.append({"type": "text", "text": text})
    messages = [SYSTEM, {"role": "user", "content": parts}]
    return client.completion(messages, model=VISION_MODEL, **(GREEDY | kwargs)).result()


def test_a_red_picture_is_called_red(eyes: Terminus) -> None:
    answer = _ask(eyes, square("red"))
    assert "red" in answer.text.lower(), answer.text


def test_the_image_changes_the_answer_deterministically(eyes: Terminus) -> None:
    plain = _ask(eyes)
    red = _ask(eyes, square("red"))
    again = _ask(eyes, square("red"))
    assert red.text == again.text
    assert red.text != plain.text
    assert "red" not in plain.text.lower()


def test_image_tokens_are_counted_exactly(eyes: Terminus) -> None:
    """Each image costs the projector's embeddings plus llama.cpp's two marker strings."""
    markers = sum(
        eyes.text_completion(m, model=VISION_MODEL, max_tokens=1).result().stats.prompt_tokens
        for m in ("<start_of_image>", "<end_of_image>")
    )
    counts = [_ask(eyes, *[square("red")] * k, max_tokens=1).stats.prompt_tokens for k in range(3)]
    assert counts[1] - counts[0] == IMAGE_TOKENS + markers
    assert counts[2] - counts[1] == IMAGE_TOKENS + markers


def test_images_in_several_messages_and_a_text_image(eyes: Terminus) -> None:
    history = [
        SYSTEM,
        {"role": "user", "content": "Look at this.", "images": [text_line()]},
        {"role": "assistant", "content": "I see it."},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": square("red")},
                {"type": "text", "text": QUESTION},
            ],
        },
    ]
    answer = eyes.completion(history, model=VISION_MODEL, **GREEDY).result()
    assert answer.stats.prompt_tokens > 2 * IMAGE_TOKENS
    assert answer.text


def test_too_many_images_for_the_context_is_a_typed_error(vision_home: Path) -> None:
    client = vision_client(vision_home, context_length=256, parallel=1)  # llama.cpp's least
    try:
        with pytest.raises(ContextLengthExceededError, match=f"prompt is {8 * 30 + 26} tokens"):
            _ask(client, *[square("red")] * 8)  # 30 tokens per image, 26 of text
    finally:
        client.close()


def test_the_projector_is_counted_in_memory(eyes: Terminus, colour_projector: Path) -> None:
    card = eyes.catalog.get(VISION_MODEL)
    files = eyes.cache.files(card)
    blind = card.model_copy(update={"defaults": {}})
    options = LoadOptions(context_length=1024, parallel=2)
    engine = LlamaCppEngine()
    extra = engine.estimate_memory(card, files, options) - engine.estimate_memory(
        blind, files, options
    )
    assert extra >= colour_projector.stat().st_size
