"""The app factory: an OpenAI-compatible HTTP face over a Terminus client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from terminus.client.sync import Terminus
from terminus.server.anthropic_api import add_anthropic_routes
from terminus.server.audio import add_audio_routes
from terminus.server.chat import add_chat_routes
from terminus.server.completions import add_completion_routes
from terminus.server.conversations import add_conversation_routes
from terminus.server.documents import add_document_routes
from terminus.server.drain import DrainMiddleware
from terminus.server.embeddings import add_embedding_routes
from terminus.server.errors import install_error_handlers
from terminus.server.eval_jobs import add_eval_job_routes
from terminus.server.evals_api import add_eval_routes
from terminus.server.guard import GuardMiddleware, HostPolicy, form_routes
from terminus.server.images import add_image_routes
from terminus.server.library import add_library_routes
from terminus.server.middleware import AccessLogMiddleware, AuthMiddleware, BodyLimitMiddleware
from terminus.server.models import add_model_routes, add_probe_routes
from terminus.server.node_api import add_node_routes
from terminus.server.ollama_api import add_ollama_routes
from terminus.server.rag import add_rag_routes
from terminus.server.settings import ServerSettings
from terminus.server.state import ServerState
from terminus.server.tools_api import add_tool_routes
from terminus.server.webapp import OPEN_PATHS as WEBAPP_PATHS
from terminus.server.webapp import add_webapp_routes

#: Probes answer without an API key (load balancers and orchestrators call them).
#: The web app's page and assets hold no data: the page asks for the key itself.
OPEN_PATHS = frozenset({"/health", "/ready"}) | WEBAPP_PATHS


def create_app(client: Terminus, settings: ServerSettings | None = None) -> FastAPI:
    """An ASGI app serving ``client``'s models; the caller keeps owning the client.

    Run it with any ASGI server (``terminus serve`` uses uvicorn). Preloaded models
    load in the background once the app starts; ``/ready`` says when they are in.
    """
    settings = settings or ServerSettings()
    state = ServerState(client, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start_preload()
        try:
            yield
        finally:
            await state.stop()

    from terminus import __version__

    app = FastAPI(
        title="Terminus",
        summary="OpenAI-compatible API over local models",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # no schema pages: OpenAI's own API reference describes the wire
        redoc_url=None,
        openapi_url=None,
    )
    app.state.terminus = state
    install_error_handlers(app)

    router = APIRouter()
    add_probe_routes(router)
    add_model_routes(router)
    add_chat_routes(router)
    add_completion_routes(router)
    add_library_routes(router)
    add_rag_routes(router)
    add_document_routes(router)
    add_conversation_routes(router)
    add_embedding_routes(router)
    add_image_routes(router)
    add_audio_routes(router)
    add_tool_routes(router)
    add_eval_routes(router)
    add_eval_job_routes(router)
    add_node_routes(router)
    add_webapp_routes(router)
    add_ollama_routes(router)
    add_anthropic_routes(router)
    app.include_router(router)

    # added innermost first: the access log ends up outermost
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(AuthMiddleware, keys=settings.api_keys, open_paths=OPEN_PATHS)
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
    if settings.access_log:
        app.add_middleware(AccessLogMiddleware, logger=state.log)
    return app
