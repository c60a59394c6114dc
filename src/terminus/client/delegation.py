"""Which transport delegated requests take: one provider, or a pool of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.transports import Transport

if TYPE_CHECKING:
    from terminus.client.sync import Terminus


def delegated_transport(
    client: Terminus, delegate: str | Sequence[str], fallback: Transport | None
) -> Transport:
    """A ``PeerTransport`` for one reference, a ``PoolTransport`` for several."""
    peers = [delegate] if isinstance(delegate, str) else list(delegate)
    if not peers:
        raise InvalidParameterError("delegate names no provider")
    if len(peers) == 1:
        from terminus.transports.peer import PeerTransport

        return PeerTransport(peers[0], home=client.home, fallback=fallback)
    from terminus.transports.pool import PoolTransport

    def resolve(model: str) -> str:
        try:
            return client.catalog.get(model).id
        except ModelNotFoundError:  # a model only the providers know
            return model

    return PoolTransport(peers, home=client.home, fallback=fallback, resolve=resolve)
