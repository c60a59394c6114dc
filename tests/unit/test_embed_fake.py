"""The embed API through the fake engine: shapes, normalization, errors, async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from terminus import AsyncTerminus, Terminus
from terminus.errors import CapabilityError, InvalidParameterError
from terminus.models.card import ModelCard


@pytest.fixture()
def embed_client(client: Terminus, make_fake_card: Callable[..., ModelCard]) -> Terminus:
    client.catalog.register(make_fake_card("fake-embed", capability="embed", dimensions=32))
    return client


def test_batch_vectors_are_normalized_float32(embed_client: Terminus) -> None:
    out = embed_client.embed(["red apples", "green apples", "tax law"], model="fake-embed")
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (3, 32)
    assert len(out) == 3 and out.dimensions == 32
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-6)
    sims = out.vectors @ out.vectors.T
    assert sims[0, 1] > sims[0, 2]  # shared words are closer
    assert out.prompt_tokens == 6


def test_single_string_and_unnormalized(embed_client: Terminus) -> None:
    out = embed_client.embed("one two two", model="fake-embed", normalize=False)
    assert out.vectors.shape == (1, 32)
    assert np.isclose(out.vectors.sum(), 3.0)


def test_empty_batch_is_invalid(embed_client: Terminus) -> None:
    with pytest.raises(InvalidParameterError):
        embed_client.embed([], model="fake-embed")


def test_chat_model_cannot_embed_and_embed_model_cannot_chat(
    embed_client: Terminus, make_fake_card: Callable[..., ModelCard]
) -> None:
    embed_client.catalog.register(make_fake_card("fake-chat-2"))
    with pytest.raises(CapabilityError):
        embed_client.embed("x", model="fake-chat-2")
    with pytest.raises(CapabilityError):
        embed_client.completion("x", model="fake-embed").result()


async def test_async_embed(embed_client: Terminus) -> None:
    aclient = AsyncTerminus(embed_client)
    outs = await asyncio.gather(*(aclient.embed(f"text {i}", model="fake-embed") for i in range(4)))
    assert [o.vectors.shape for o in outs] == [(1, 32)] * 4
