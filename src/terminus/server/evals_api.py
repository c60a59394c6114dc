"""Terminus extension: evaluation runs over HTTP — list, summarize, chart.

Runs are the folders ``terminus eval run`` writes under ``$TERMINUS_HOME/eval/runs``;
a run is named by its folder name (never by a filesystem path). Ladders are the folders
``terminus eval ladder`` writes under ``$TERMINUS_HOME/eval/ladders``.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.eval.ladder import LADDER_FILE, ladders_root
from terminus.eval.ladder_report import ladder_view
from terminus.eval.report import chart, load_run, summarize
from terminus.eval.runner import RUN_FILE
from terminus.server.errors import APIError
from terminus.server.state import ServerState, server_state

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def runs_root(state: ServerState) -> Path:
    return state.client.home / "eval" / "runs"


def _run_dir(state: ServerState, name: str) -> Path:
    path = runs_root(state) / name
    if not _NAME.match(name) or name.startswith(".") or not (path / RUN_FILE).is_file():
        raise APIError(404, f"no evaluation run named {name!r}", code="not_found")
    return path


def _list(state: ServerState) -> list[dict[str, Any]]:
    root = runs_root(state)
    rows = []
    for meta in sorted(root.glob(f"*/{RUN_FILE}")) if root.is_dir() else ():
        try:
            summary = summarize(load_run(meta.parent))
        except (OSError, ValueError, KeyError):
            continue  # a run being written, or one from another version: not listed
        planned = sum(b["planned"] for b in summary["benchmarks"].values())
        done = sum(b["n"] for b in summary["benchmarks"].values())
        rows.append(
            {
                "name": meta.parent.name,
                "label": summary["label"],
                "mode": summary["mode"],
                "benchmarks": list(summary["benchmarks"]),
                "mean_accuracy": summary["mean_accuracy"],
                "items_done": done,
                "items_planned": planned,
                "updated_at": meta.stat().st_mtime,
            }
        )
    return sorted(rows, key=lambda r: r["updated_at"], reverse=True)


def _ladders(state: ServerState) -> list[dict[str, Any]]:
    root = ladders_root(state.client.home)
    rows = []
    for path in sorted(root.glob(f"*/{LADDER_FILE}")) if root.is_dir() else ():
        if not (path.parent / "ladder_report.html").is_file():
            continue  # still running its first cells
        try:
            ladder = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append(
            {
                "name": path.parent.name,
                "models": [cell["model"] for cell in ladder["cells"]],
                "benchmarks": list(ladder["config"]["benchmarks"]),
                "mode": ladder["config"]["mode"],
                "limit": ladder["config"]["limit"],
                "updated_at": path.stat().st_mtime,
            }
        )
    return sorted(rows, key=lambda r: r["updated_at"], reverse=True)


def _ladder_file(state: ServerState, name: str, file: str) -> Path:
    path = ladders_root(state.client.home) / name / file
    if not _NAME.match(name) or name.startswith(".") or not path.is_file():
        raise APIError(404, f"no evaluation ladder named {name!r}", code="not_found")
    return path


def _chart_png(state: ServerState, names: list[str]) -> bytes:
    summaries = [summarize(load_run(_run_dir(state, n))) for n in names]
    with tempfile.TemporaryDirectory(prefix="terminus-chart-") as tmp:
        path = Path(tmp) / "chart.png"
        chart(summaries, path)
        return path.read_bytes()


def add_eval_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/eval/runs")
    async def list_runs(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": await asyncio.to_thread(_list, server_state(request))}

    @router.get("/terminus/v1/eval/runs/{name}")
    async def run_summary(name: str, request: Request) -> dict[str, Any]:
        state = server_state(request)
        path = await asyncio.to_thread(_run_dir, state, name)
        summary = await asyncio.to_thread(lambda: summarize(load_run(path)))
        return {"name": name, **summary}

    @router.get("/terminus/v1/eval/ladders")
    async def list_ladders(request: Request) -> dict[str, Any]:
        return {"object": "list", "data": await asyncio.to_thread(_ladders, server_state(request))}

    @router.get("/terminus/v1/eval/ladders/{name}")
    async def ladder_tables(name: str, request: Request) -> dict[str, Any]:
        """The report's tables (rows of text, header first) and its settings."""
        path = await asyncio.to_thread(
            _ladder_file, server_state(request), name, "ladder_report.html"
        )
        view = await asyncio.to_thread(ladder_view, path.parent)
        return {"name": name, **view}

    @router.get("/terminus/v1/eval/ladders/{name}/size.png", response_model=None)
    async def ladder_size_plot(name: str, request: Request) -> Response:
        path = await asyncio.to_thread(_ladder_file, server_state(request), name, "ladder_size.png")
        return Response(
            path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-cache"}
        )

    @router.get("/terminus/v1/eval/ladders/{name}/report.html", response_model=None)
    async def ladder_report(name: str, request: Request) -> Response:
        """The ladder's self-contained HTML report (no scripts; images inline)."""
        path = await asyncio.to_thread(
            _ladder_file, server_state(request), name, "ladder_report.html"
        )
        return Response(
            path.read_bytes(),
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": "script-src 'none'"},
        )

    @router.get("/terminus/v1/eval/runs/{name}/chart.png", response_model=None)
    async def run_chart(name: str, request: Request) -> Response:
        """The accuracy chart (95 % CIs); ``?with=OTHER`` adds runs side by side."""
        names = [name, *request.query_params.getlist("with")]
        try:
            png = await asyncio.to_thread(_chart_png, server_state(request), names)
        except ImportError as exc:
            raise APIError(
                501, "charts need matplotlib: pip install 'terminus-sdk[eval]'", code="unavailable"
            ) from exc
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})
