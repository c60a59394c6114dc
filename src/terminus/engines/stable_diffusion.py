"""Image generation with stable-diffusion.cpp, run in a supervised worker process.

The host never imports the native library: each loaded model owns one worker
(``terminus.engines.sd_worker``) that holds the weights. A cancel kills the worker
(the wrapper cannot stop a generation), and so does leaving the event stream early;
a native crash ends only the worker and surfaces as ``WorkerCrashedError``. Either
way the next request starts a fresh worker and reloads the model.
"""

from __future__ import annotations

import collections
import importlib.metadata as md
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

import terminus.errors as errors
from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp import default_threads
from terminus.errors import (
    EngineError,
    GenerationCancelledError,
    TerminusError,
    WorkerCrashedError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import CancelToken
from terminus.types.common import Capability
from terminus.types.image import (
    MAX_SEED,
    ImageEvent,
    ImageProgress,
    ImageRequest,
    ImageResult,
    ImageStats,
    RGBImage,
)

DISTRIBUTION = "stable-diffusion-cpp-python"
# Compute buffers and activations on top of the weights at 512x512 (measured ~0.6 GB
# for SD1-class models on CPU); a margin so the fit check errs on the safe side.
COMPUTE_MARGIN = 1 << 30
POLL_S = 0.05
STDERR_LINES = 20


class StableDiffusionEngine:
    name: ClassVar[str] = "stable-diffusion"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.IMAGE})

    @classmethod
    def probe(cls) -> Availability:
        if importlib.util.find_spec("stable_diffusion_cpp") is None:
            return Availability(False, f"pip install 'terminus-sdk[image]' (needs {DISTRIBUTION})")
        try:
            version = md.version(DISTRIBUTION)
        except md.PackageNotFoundError:
            version = None
        return Availability(True, "stable-diffusion.cpp (runs in a worker process)", version)

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        weights = sum(path.stat().st_size for path in files.paths.values())
        return weights + COMPUTE_MARGIN

    def load(
        self, card: ModelCard, files: ModelFiles, options: LoadOptions
    ) -> StableDiffusionModel:
        available = self.probe()
        if not available.ok:
            raise errors.EngineUnavailableError(
                f"{card.id} needs stable-diffusion.cpp", hint=available.detail
            )
        spec = worker_spec(card, files, options)
        model = StableDiffusionModel(card, spec, self.estimate_memory(card, files, options))
        model.start()
        return model


def worker_spec(card: ModelCard, files: ModelFiles, options: LoadOptions) -> dict[str, Any]:
    """What the worker loads: a diffusers folder or one file, plus optional decoders."""
    # A diffusers folder: stable-diffusion.cpp reads unet/, text_encoder/ and vae/ in it.
    diffusers = card.format == "diffusers"
    model_path = files.root if diffusers else files.paths[card.main_file.name]

    def role(key: str) -> str:
        name = options.extra.get(key, card.defaults.get(key))
        if name is None:
            return ""
        if name not in files.paths:
            raise errors.InvalidParameterError(f"{card.id}: {key} names no file of the card")
        return str(files.paths[name])

    threads = options.threads or card.defaults.get("threads") or default_threads()
    return {
        "model_path": str(model_path),
        "taesd_path": role("taesd"),
        "vae_path": role("vae"),
        "threads": int(threads),
        "verbose": bool(options.extra.get("verbose", False)),
    }


class _Worker:
    """One worker process and the connection to it."""

    def __init__(self) -> None:
        host_end, worker_end = Pipe(duplex=True)
        fd = worker_end.fileno()
        env = dict(os.environ)
        # The worker must import this very copy of terminus (also from a source tree).
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "terminus.engines.sd_worker", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        worker_end.close()
        self.conn: Connection = host_end
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._drainer = threading.Thread(
            target=self._drain_stderr, name="terminus-sd-stderr", daemon=True
        )
        self._drainer.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, op: str, payload: dict[str, Any]) -> None:
        try:
            self.conn.send((op, payload))
        except OSError as exc:
            raise self.crashed(f"sending {op!r}") from exc

    def receive(self, cancel: CancelToken | None, doing: str) -> tuple[Any, ...]:
        """The worker's next message; kills it on cancel, raises typed errors it reports."""
        while True:
            if cancel is not None and cancel.cancelled:
                self.kill()
                raise GenerationCancelledError(f"{doing} was cancelled")
            if self.conn.poll(POLL_S):
                try:
                    message: tuple[Any, ...] = self.conn.recv()
                except (EOFError, OSError) as exc:
                    raise self.crashed(doing) from exc
                if message[0] == "error":
                    raise _error_from(message[1], message[2])
                return message
            if not self.alive():
                raise self.crashed(doing)

    def crashed(self, doing: str) -> WorkerCrashedError:
        self.kill()
        code = self.process.returncode
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        tail = " | ".join(line for line in self._stderr if line.strip())[-500:]
        return WorkerCrashedError(
            f"the image worker died ({how}) while {doing}" + (f": {tail}" if tail else ""),
            hint="the next request starts a fresh worker",
        )

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        self.conn.close()
        self._drainer.join(timeout=5)  # it closes the stderr pipe at EOF

    def stop(self) -> None:
        if self.alive():
            try:
                self.conn.send(("exit", {}))
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as stream:
            for raw in stream:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())


def _error_from(class_name: str, message: str) -> TerminusError:
    cls = getattr(errors, class_name, None)
    if isinstance(cls, type) and issubclass(cls, TerminusError):
        return cls(message)
    return EngineError(message)


class StableDiffusionModel:
    """A model held by a worker process; one generation at a time."""

    def __init__(self, card: ModelCard, spec: dict[str, Any], memory_bytes: int) -> None:
        self.card = card
        self.memory_bytes = memory_bytes
        self.threads: int = spec["threads"]
        self._spec = spec
        self._lock = threading.Lock()
        self._worker: _Worker | None = None

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one runs (tests and diagnostics)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    def start(self) -> float:
        """Start a worker and load the model in it; seconds it took."""
        started = time.perf_counter()
        worker = _Worker()
        try:
            worker.send("load", self._spec)
            _, info = worker.receive(None, f"loading {self.card.id}")
        except BaseException:
            worker.kill()
            raise
        self.threads = info["threads"]
        self._worker = worker
        return time.perf_counter() - started

    def generate_image(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        while not self._lock.acquire(timeout=POLL_S):  # one generation per worker
            if cancel.cancelled:
                raise GenerationCancelledError("the generation was cancelled while queued")
        try:
            yield from self._generate(request, cancel)
        finally:
            self._lock.release()

    def _generate(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        started = time.perf_counter()
        load_s = 0.0
        if self._worker is None or not self._worker.alive():
            load_s = self.start()  # cancelled or crashed before: a fresh worker
        worker = self._worker
        assert worker is not None
        params = self._params(request)
        worker.send("generate", params)
        finished = False
        try:
            while True:
                message = worker.receive(cancel, "generating an image")
                if message[0] == "progress":
                    _, step, total, seconds = message
                    yield ImageProgress(step=step, total=total, seconds=seconds)
                    continue
                _, images, info = message
                finished = True
                yield ImageResult(
                    model=self.card.id,
                    images=tuple(RGBImage(width=w, height=h, rgb=rgb) for w, h, rgb in images),
                    stats=ImageStats(
                        seed=params["seed"],
                        width=params["width"],
                        height=params["height"],
                        steps=params["steps"],
                        cfg_scale=params["cfg_scale"],
                        sampler=params["sampler"],
                        threads=self.threads,
                        load_s=load_s,
                        generate_s=info["generate_s"],
                        total_s=time.perf_counter() - started,
                    ),
                )
                return
        finally:
            if not finished and worker.alive():
                worker.kill()  # the consumer left mid-generation: stop the work

    def _params(self, request: ImageRequest) -> dict[str, Any]:
        defaults = self.card.defaults
        seed = request.seed if request.seed is not None else random.randint(0, MAX_SEED)
        return {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.width or int(defaults.get("width", 512)),
            "height": request.height or int(defaults.get("height", 512)),
            "steps": request.steps or int(defaults.get("steps", 20)),
            "cfg_scale": (
                request.cfg_scale
                if request.cfg_scale is not None
                else float(defaults.get("cfg_scale", 7.0))
            ),
            "seed": seed,
            "sampler": request.sampler or defaults.get("sampler"),
            "scheduler": request.scheduler or defaults.get("scheduler"),
            "count": request.count,
            "init_image": request.init_image,
            "strength": request.strength,
        }

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
