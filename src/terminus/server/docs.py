"""``GET /metrics`` (Prometheus text format) and ``GET /docs`` (Swagger UI).

The docs page uses the Swagger UI assets of the ``fastapi-offline`` package when
it is installed (the server extra has it), so it works on a machine with no internet access; otherwise it
falls back to FastAPI's default (assets from a CDN).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from terminus.server.metrics import ServerMetrics

DOCS_ASSETS = "/docs/assets"
#: Pages and schema that reveal no data: a browser can open them without an API key.
DOCS_PATHS = frozenset({"/docs", "/openapi.json"})


def add_metrics_route(router: APIRouter, metrics: ServerMetrics) -> None:
    @router.get("/metrics", response_class=Response, include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)


def _local_assets() -> Path | None:
    spec = importlib.util.find_spec("fastapi_offline")  # found, not imported
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def add_docs_routes(app: FastAPI) -> None:
    assets = _local_assets()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        if assets is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
