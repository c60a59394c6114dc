"""Where requests go: the in-process runtime, a peer, or any OpenAI-compatible server."""

from terminus.transports.base import Transport
from terminus.transports.local import LocalTransport

__all__ = ["LocalTransport", "Transport"]
