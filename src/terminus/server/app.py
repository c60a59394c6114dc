"""The app factory: an OpenAI-compatible HTTP face over a Terminus client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from terminus.client.sync import Terminus
from terminus.server.agent_tools import ServerToolbox, add_agent_tool_routes
from terminus.server.anthropic_api import add_anthropic_routes
from terminus.server.audio import add_audio_routes
from terminus.server.chat import add_chat_routes
from terminus.server.completions import add_completion_routes
from terminus.server.conversations import add_conversation_routes
from terminus.server.docs import DOCS_ASSETS, DOCS_PATHS, add_docs_routes, add_metrics_route
from terminus.server.documents import add_document_routes
from terminus.server.drain import DrainMiddleware
from terminus.server.embeddings import add_embedding_routes
from terminus.server.errors import install_error_handlers
from terminus.server.eval_jobs import add_eval_job_routes
from terminus.server.evals_api import add_eval_routes
from terminus.server.guard import GuardMiddleware, HostPolicy, form_routes
from terminus.server.images import add_image_routes
from terminus.server.library import add_library_routes
from terminus.server.lifecycle import add_lifecycle_routes
from terminus.server.metrics import MetricsMiddleware, ServerMetrics
from terminus.server.middleware import AccessLogMiddleware, AuthMiddleware, BodyLimitMiddleware
from terminus.server.models import add_model_routes, add_probe_routes
from terminus.server.node_api import add_node_routes
from terminus.server.ollama_api import add_ollama_routes
from terminus.server.rag import add_rag_routes
from terminus.server.responses import add_response_routes
from terminus.server.responses_store import ResponseStore
from terminus.server.settings import ServerSettings
from terminus.server.state import ServerState
from terminus.server.tokenizer_api import add_tokenizer_routes
from terminus.server.tools_api import add_tool_routes
from terminus.server.transport_api import add_transport_routes
from terminus.server.webapp import OPEN_PATHS as WEBAPP_PATHS
from terminus.server.webapp import add_webapp_routes
from terminus.transports.resident import Resident, clear_resident, write_resident


def announce_resident(home: Path, settings: ServerSettings) -> None:
    """Tell this home's CLI where the resident server listens (``terminus serve --detach``)."""
    resident = Resident(pid=os.getpid(), host=settings.host, port=settings.port, home=str(home))
    write_resident(home, resident)


#: Probes answer without an API key (load balancers and orchestrators call them).
#: The web app's page and assets and the API docs hold no data: the page asks for the key.
OPEN_PATHS = frozenset({"/health", "/ready"}) | WEBAPP_PATHS | DOCS_PATHS


def create_app(client: Terminus, settings: ServerSettings | None = None) -> FastAPI:
    """An ASGI app serving ``client``'s models; the caller keeps owning the client.

    Run it with any ASGI server (``terminus serve`` uses uvicorn). Preloaded models
    load in the background once the app starts; ``/ready`` says when they are in.
    """
    settings = settings or ServerSettings()
    state = ServerState(client, settings)
    if settings.keep_alive_s is not None:
        client.manager.default_keep_alive_s = settings.keep_alive_s
    store = ResponseStore(
        settings.responses_path or client.home / "server" / "responses.sqlite",
        ttl_s=settings.responses_ttl_s,
        max_rows=settings.responses_max_rows,
        max_bytes=settings.responses_max_bytes,
    )
    metrics = ServerMetrics(state)
    tool_servers = ServerToolbox(settings.tool_servers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start_preload()
        if settings.resident:
            announce_resident(client.home, settings)
        try:
            yield
        finally:
            if settings.resident:
                clear_resident(client.home, os.getpid())
            await state.stop()
            store.close()
            tool_servers.close()

    from terminus import __version__

    app = FastAPI(
        title="Terminus",
        summary="OpenAI-compatible API over local models",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by add_docs_routes, with local assets when installed
        redoc_url=None,
    )
    app.state.terminus = state
    app.state.toolbox = tool_servers
    install_error_handlers(app)

    router = APIRouter()
    add_probe_routes(router)
    add_model_routes(router)
    add_chat_routes(router)
    add_completion_routes(router)
    add_tokenizer_routes(router)
    add_library_routes(router)
    add_rag_routes(router)
    add_document_routes(router)
    add_conversation_routes(router)
    add_embedding_routes(router)
    add_image_routes(router)
    add_audio_routes(router)
    add_tool_routes(router)
    add_agent_tool_routes(router)
    add_eval_routes(router)
    add_eval_job_routes(router)
    add_node_routes(router)
    add_webapp_routes(router)
    add_ollama_routes(router)
    add_anthropic_routes(router)
    add_response_routes(router, store)
    add_lifecycle_routes(router)
    add_transport_routes(router)
    add_metrics_route(router, metrics)
    app.include_router(router)
    add_docs_routes(app)

    # added innermost first: the access log ends up outermost
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(
        AuthMiddleware,
        keys=settings.api_keys,
        open_paths=OPEN_PATHS,
        open_prefixes=(DOCS_ASSETS + "/",),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            max_age=600,
        )
    app.add_middleware(
        GuardMiddleware,
        hosts=HostPolicy(settings.host, settings.allowed_hosts),
        cors_origins=settings.cors_origins,
        form_routes=form_routes(router),
    )
    app.add_middleware(DrainMiddleware, state=state, open_paths=OPEN_PATHS)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.access_log:
        app.add_middleware(AccessLogMiddleware, logger=state.log)
    return app
