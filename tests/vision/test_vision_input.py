"""Images in chat messages: accepted shapes, checks and limits (no model needed)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from images import data_url, encoded, png_claiming, square
from PIL import Image

from terminus import Terminus
from terminus.errors import CapabilityError, ChatImageError, InvalidParameterError
from terminus.models.card import ModelCard
from terminus.types import Message, parse_messages
from terminus.types.common import Capability
from terminus.types.vision import MAX_IMAGES, MAX_SIDE, image_from_base64, prepare_image


def _decoded(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def test_every_source_shape_gives_the_same_checked_png(tmp_path: Path) -> None:
    data = square("red")
    path = tmp_path / "red.png"
    path.write_bytes(data)
    pil = Image.open(io.BytesIO(data))
    from_bytes = prepare_image(data)
    assert base64.b64decode(from_bytes) == data  # PNG within limits passes through untouched
    assert prepare_image(path) == from_bytes
    assert prepare_image(str(path)) == from_bytes
    assert prepare_image(data_url(data)) == from_bytes
    assert _decoded(prepare_image(pil)).getpixel((5, 5)) == (255, 0, 0)


def test_other_formats_become_png() -> None:
    webp = square("blue", fmt="WEBP")
    out = _decoded(prepare_image(webp))
    assert out.format == "PNG"
    assert out.size == (200, 150)
    assert out.getpixel((100, 75))[2] > 200


def test_a_50_megapixel_photo_is_scaled_down_within_the_limit() -> None:
    big = encoded(Image.new("RGB", (8660, 5774), "green"), "JPEG")
    out = _decoded(prepare_image(big))
    assert max(out.size) == MAX_SIDE
    assert out.size == (MAX_SIDE, round(5774 * MAX_SIDE / 8660))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (square("red")[:300], "corrupt or truncated"),
        (square("red", size=(4000, 3000), fmt="JPEG")[:2000], "corrupt or truncated"),
        (encoded(Image.new("RGB", (8, 8)), "PPM"), "PPM images are not supported"),
        (png_claiming(20_000, 20_000), "megapixels"),
    ],
    ids=["empty", "garbage", "truncated", "big-truncated-jpeg", "unsupported-format", "bomb"],
)
def test_bad_images_are_typed_errors(data: bytes, message: str) -> None:
    with pytest.raises(ChatImageError, match=message) as caught:
        prepare_image(data, where="content[0]")
    assert "content[0]" in str(caught.value)
    assert caught.value.http_status == 400


def test_urls_are_fetched_only_when_allowed() -> None:
    with pytest.raises(ChatImageError, match="not fetched"):
        prepare_image("https://example.com/cat.png")
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return square("red")

    assert prepare_image("https://example.com/cat.png", fetch=fetch)
    assert fetched == ["https://example.com/cat.png"]


def test_bad_data_urls_and_missing_files() -> None:
    with pytest.raises(ChatImageError, match="base64"):
        prepare_image("data:image/png,rawbytes")
    with pytest.raises(ChatImageError, match="base64"):
        image_from_base64("@@@not base64@@@")
    with pytest.raises(ChatImageError, match="cannot read"):
        prepare_image("/no/such/picture.png")
    with pytest.raises(ChatImageError, match="not int"):
        prepare_image(42)


def test_content_parts_split_into_text_and_images() -> None:
    red, blue = square("red"), square("blue")
    (message,) = parse_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image", "image": red},
                    {"type": "image_url", "image_url": {"url": data_url(blue)}},
                    {"type": "text", "text": "these."},
                ],
            }
        ]
    )
    assert message.content == "Compare\nthese."
    assert [base64.b64decode(b) for b in message.images] == [red, blue]
    (ollama_style,) = parse_messages([{"role": "user", "content": "Hi", "images": [red]}])
    assert ollama_style.images == (base64.b64encode(red).decode(),)


def test_bad_parts_and_raw_images_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'audio'"):
        parse_messages([{"role": "user", "content": [{"type": "audio", "audio": "x"}]}])
    with pytest.raises(ChatImageError, match=r"content\[0\]"):
        parse_messages([{"role": "user", "content": [{"type": "image", "image": b"junk"}]}])
    with pytest.raises(ValueError, match="base64-encoded PNG or JPEG"):
        Message(role="user", content="hi", images=("photo.jpg" * 4,))


def test_too_many_images_is_a_bad_request() -> None:
    part = {"type": "image", "image": square("red", size=(8, 8))}
    with pytest.raises(ChatImageError, match=f"at most {MAX_IMAGES}"):
        parse_messages([{"role": "user", "content": [part] * (MAX_IMAGES + 1)}])


def test_vision_capability_comes_from_the_projector(make_fake_card: object) -> None:
    card = ModelCard(
        id="m",
        capability=Capability.CHAT,
        engine="llamacpp",
        files=({"name": "m.gguf", "sha256": "0" * 64}, {"name": "p.gguf", "sha256": "1" * 64}),
        defaults={"mmproj": "p.gguf"},
    )
    assert card.capabilities == (Capability.CHAT, Capability.VISION)
    text_only = card.model_copy(update={"defaults": {}})
    assert text_only.capabilities == (Capability.CHAT,)


def test_a_text_only_model_given_an_image_is_an_error_naming_it(fake_client: Terminus) -> None:
    messages = [{"role": "user", "content": [{"type": "image", "image": square("red")}]}]
    with pytest.raises(CapabilityError, match="fake-chat cannot read images"):
        fake_client.completion(messages, model="fake-chat").result()
    assert fake_client.loaded_models() == []  # refused before loading
