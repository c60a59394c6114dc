"""What RAG needs from a client: ``embed`` and ``completion``, wherever they run.

``terminus.Terminus`` satisfies it whatever its transport (in-process, a peer, an HTTP
server), and so does any wrapper with the same two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from terminus.errors import ModelNotFoundError, TerminusError

if TYPE_CHECKING:
    from terminus.client.streams import CompletionStream
    from terminus.types import Embeddings
    from terminus.types.chat import MessagesLike


class RagClient(Protocol):
    home: Path

    def embed(
        self, texts: str | Sequence[str], *, model: str | None = None, normalize: bool = True
    ) -> Embeddings: ...

    def completion(
        self, messages: MessagesLike, *, model: str | None = None, **kwargs: Any
    ) -> CompletionStream: ...


def canonical_model(client: RagClient, name: str) -> str:
    """The model's card id when the client has a catalog (so ``minilm`` and
    ``all-minilm-l6-v2`` bind a workspace to the same model), else the name as given.
    A name the catalog does not know raises ``ModelNotFoundError``."""
    catalog = getattr(client, "catalog", None)
    if catalog is None:
        return name
    try:
        return str(catalog.get(name).id)
    except ModelNotFoundError:
        raise
    except (TerminusError, AttributeError):
        return name
