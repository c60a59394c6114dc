"""An OpenAI-compatible HTTP server over the Terminus client (``pip install 'terminus-sdk[server]'``).

>>> from terminus import Terminus
>>> from terminus.server import ServerSettings, create_app
>>> app = create_app(Terminus(), ServerSettings(preload=("smollm2",)))

``terminus serve`` runs it with uvicorn. See docs/server.md.
"""

from terminus.server.app import create_app
from terminus.server.settings import (
    ServerSettings,
    check_exposure,
    resolve_allowed_hosts,
    resolve_api_keys,
)

__all__ = [
    "ServerSettings",
    "check_exposure",
    "create_app",
    "resolve_allowed_hosts",
    "resolve_api_keys",
]
