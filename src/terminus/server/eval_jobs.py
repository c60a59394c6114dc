"""Terminus extension: start an evaluation run from HTTP and follow its progress.

``POST /terminus/v1/eval/runs`` starts ``evaluate`` on a worker thread (one run at a time
per server: scoring uses every slot of the model) and answers the job; ``GET
/terminus/v1/eval/jobs/{id}`` says how many items are scored so far, counted from the
run's own result file, which is written item by item (a restart resumes the run).
Benchmark files are looked for in ``$TERMINUS_EVAL_DATA_DIR`` first, as ``--data-dir``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from terminus.errors import TerminusError
from terminus.eval.api import backend_for, default_run_dir, evaluate
from terminus.eval.runner import RunConfig
from terminus.eval.store import RESULTS_FILE
from terminus.server.errors import APIError
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state


class EvalRunBody(Wire):
    model: str = Field(min_length=1)
    benchmarks: list[str] = Field(min_length=1, max_length=16)
    mode: Literal["loglikelihood", "generative"] = "loglikelihood"
    limit: int | None = Field(default=20, ge=1)
    seed: int = 0


@dataclass
class EvalJob:
    id: str
    model: str
    planned: int | None
    status: str = "starting"  # starting | running | finished | failed
    run: str | None = None
    run_dir: Path | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)

    def view(self) -> dict[str, Any]:
        done = 0
        if self.run_dir is not None and (self.run_dir / RESULTS_FILE).is_file():
            with (self.run_dir / RESULTS_FILE).open("rb") as results:
                done = sum(1 for _ in results)
        if self.planned is not None:
            done = min(done, self.planned)
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "run": self.run,
            "items_done": done,
            "items_planned": self.planned,
            "error": self.error,
            "started_at": self.started_at,
        }


class EvalJobs:
    """The jobs of one server; at most one runs at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, EvalJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, state: ServerState, body: EvalRunBody, data_dir: Path | None) -> EvalJob:
        with self._lock:
            if any(j.status in ("starting", "running") for j in self._jobs.values()):
                raise APIError(409, "an evaluation run is in progress", code="conflict")
            planned = body.limit * len(body.benchmarks) if body.limit else None
            job = EvalJob(f"evaljob-{next(self._ids)}", body.model, planned)
            self._jobs[job.id] = job
        config = RunConfig(tuple(body.benchmarks), mode=body.mode, limit=body.limit, seed=body.seed)
        thread = threading.Thread(
            target=self._run, args=(state, job, config, data_dir), daemon=True, name=job.id
        )
        thread.start()
        return job

    def _run(self, state: ServerState, job: EvalJob, config: RunConfig, data: Path | None) -> None:
        client = state.client
        try:
            backend = backend_for(client, job.model)
            job.run_dir = default_run_dir(client.home, backend.label, config)
            job.run, job.status = job.run_dir.name, "running"
            evaluate(client, job.model, config, data_dir=data, run_dir=job.run_dir, backend=backend)
            job.status = "finished"
        except TerminusError as exc:
            job.status, job.error = "failed", exc.one_line()
        except Exception as exc:
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def get(self, job_id: str) -> EvalJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise APIError(404, f"no evaluation job {job_id!r}", code="not_found")
        return job


DATA_DIR_ENV = "TERMINUS_EVAL_DATA_DIR"


def add_eval_job_routes(router: APIRouter) -> None:
    jobs = EvalJobs()

    @router.post("/terminus/v1/eval/runs", status_code=202)
    async def start(request: Request) -> dict[str, Any]:
        body = await parse_body(request, EvalRunBody)
        state = server_state(request)
        await asyncio.to_thread(state.client.models.get, body.model)  # unknown model → 404
        data_dir = os.environ.get(DATA_DIR_ENV)
        return jobs.start(state, body, Path(data_dir) if data_dir else None).view()

    @router.get("/terminus/v1/eval/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).view()
