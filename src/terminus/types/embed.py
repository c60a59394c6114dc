"""Embedding requests and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np


class EmbedRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str
    inputs: tuple[str, ...] = Field(min_length=1)
    normalize: bool = True


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a batch of texts: ``vectors[i]`` embeds ``inputs[i]``.

    ``vectors`` is a float32 array of shape (n, dimensions), L2-normalized unless
    the request asked otherwise.
    """

    model: str
    vectors: np.ndarray[Any, Any]
    prompt_tokens: int
    total_s: float

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])
