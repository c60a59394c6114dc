"""The host's side of a llama.cpp worker process: an ``xllamacpp.Server`` stand-in.

:class:`WorkerServer` offers the server's ``handle_*`` calls with the same
arguments and results, but the model lives in ``terminus.engines.llamacpp_worker``.
So a crash inside llama.cpp (a segfault, an abort) ends only the worker: the
calls in flight fail with ``WorkerCrashedError`` and the next call starts a
fresh worker, which loads the model again. The model load runs there too, so it
never holds the host's GIL.

One reader thread per worker hands each call's chunks to that call's queue;
a chunk's arrival is also when the call's ``stop`` predicate is asked, so a
cancel reaches llama.cpp's stop hook within a token or two, whether or not
anyone is reading the queue.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminus.engines.llamacpp_params import Assignment
from terminus.engines.llamacpp_threads import ThreadTuner, with_threads, worker_environment
from terminus.engines.worker_pipe import MessagePipe
from terminus.errors import EngineError, WorkerCrashedError

END = object()  # a call's last queue item after its chunks (an exception ends it too)
POLL_S = 0.05
STDERR_LINES = 20


class Call:
    """One request in flight: its chunks arrive on ``queue``, then ``END`` or an exception."""

    def __init__(self, call_id: int, stop: Callable[[], bool] | None) -> None:
        self.id = call_id
        self.stop = stop
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.value: Any = None
        self.finished = False
        self.cancel_sent = False


class _Process:
    """One worker process, its connection, and the calls it is running."""

    def __init__(self, label: str = "a model") -> None:
        host_end, worker_end = socket.socketpair()
        fd = worker_end.fileno()
        env = worker_environment(os.environ)  # how llama.cpp's threads wait
        # The worker must import this very copy of terminus (also from a source tree).
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.label = label
        self.process = subprocess.Popen(
            [sys.executable, "-m", "terminus.engines.llamacpp_worker", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        worker_end.close()
        self.conn = MessagePipe(host_end.detach())
        self.calls: dict[int, Call] = {}
        self.address: str | None = None  # llama.cpp's own HTTP API, on loopback
        self.lock = threading.Lock()  # sends, and the calls table
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._drainer = threading.Thread(
            target=self._drain_stderr, name="terminus-llamacpp-stderr", daemon=True
        )
        self._drainer.start()
        self.reader: threading.Thread | None = None
        self.dead = False
        self.stopping = False  # asked to exit: calls still running were unloaded, not crashed
        self.retiring = False  # being replaced: takes no new call (see WorkerServer.open)
        self.pending: list[Assignment] | None = None  # a load sent ahead (begin_load)

    def begin_load(self, assignments: list[Assignment]) -> None:
        """Send the load now; :meth:`load` with the same assignments collects it."""
        self.conn.send(("load", assignments))
        self.pending = assignments

    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            self.conn.send(message)

    def load(self, assignments: list[Assignment]) -> float:
        """Load the model in the worker; seconds it took there."""
        try:
            if self.pending is None:
                self.conn.send(("load", assignments))
            elif not same_load(self.pending, assignments):
                raise EngineError("a worker loading other settings cannot be reused")
            self.pending = None
            while not self.conn.poll(POLL_S):
                if self.process.poll() is not None:
                    raise self.crashed("loading the model")
            message = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self.crashed("loading the model") from exc
        if message[0] == "load_error":
            self.kill()
            raise EngineError(f"llama.cpp could not load {self.label}: {message[1]}")
        self.reader = threading.Thread(target=self._read, name="terminus-llamacpp", daemon=True)
        self.reader.start()
        self.address = message[1].get("address")
        return float(message[1]["load_s"])

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            kind, call_id = message[0], message[1]
            if kind == "chunks":
                self._deliver(message[2])
                continue
            call = self.calls.get(call_id)
            if call is None:
                continue
            with self.lock:
                self.calls.pop(call_id, None)
            call.finished = True
            if kind == "result":
                call.value = message[2]
                call.queue.put(END)
            else:
                call.queue.put(_rebuilt(message[2], message[3]))
        self._fail_all("generating")

    def _deliver(self, batch: list[tuple[int, Any]]) -> None:
        """Hand each chunk to its call; a call that should stop is cancelled here."""
        touched: dict[int, Call] = {}
        for call_id, chunk in batch:
            call = self.calls.get(call_id)
            if call is not None:
                call.queue.put(chunk)
                touched[call_id] = call
        for call in touched.values():
            if call.stop is not None and not call.cancel_sent and call.stop():
                self.cancel(call)

    def _fail_all(self, doing: str) -> None:
        """The worker is gone: every call still running gets the crash, none waits forever."""
        self.dead = True
        with self.lock:
            calls = list(self.calls.values())
            self.calls.clear()
        if not calls:
            return
        error: EngineError = (
            EngineError(f"{self.label} was unloaded while {doing}")
            if self.stopping
            else self.crashed(doing)
        )
        for call in calls:
            call.finished = True
            call.queue.put(error)

    def cancel(self, call: Call) -> None:
        call.cancel_sent = True
        with contextlib.suppress(OSError):  # a dead worker: its reader fails the call
            self.send(("cancel", call.id))

    def crashed(self, doing: str) -> WorkerCrashedError:
        self.dead = True
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        tail = " | ".join(line for line in self.stderr if line.strip())[-500:]
        return WorkerCrashedError(
            f"the llama.cpp worker running {self.label} died ({how}) while {doing}"
            + (f": {tail}" if tail else ""),
            hint="the next request loads the model again in a fresh worker",
        )

    def kill(self) -> None:
        self.dead = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()
        self._drainer.join(timeout=5)  # it closes the stderr pipe at EOF

    def stop(self) -> None:
        self.stopping = True
        if self.process.poll() is None:
            try:
                self.send(("exit",))
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as stream:
            for raw in stream:
                self.stderr.append(raw.decode("utf-8", "replace").rstrip())


def _rebuilt(class_name: str, message: str) -> Exception:
    """The worker's exception, as the same builtin kind (callers map ValueError apart)."""
    return ValueError(message) if class_name == "ValueError" else RuntimeError(message)


def _kill_quietly(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


# A worker started ahead of its load (see prestart_worker), taken by the next start.
_spare: _Process | None = None
_spare_lock = threading.Lock()


def prestart_worker(assignments: list[Assignment] | None = None) -> None:
    """Start a worker process now, before the model to load is known.

    A command that will load a model calls this first: the worker's interpreter
    start and its xllamacpp import then run beside the host's own start-up (its
    imports, the card and the header) instead of after it. With ``assignments``
    (what the same command loaded last time) the worker starts loading that model
    at once; the next load takes the worker only if it asks for exactly those
    settings. One never taken ends with this process.
    """
    global _spare
    with _spare_lock:
        if _spare is not None and _spare.alive():
            return
        _spare = spare = _Process()
    weakref.finalize(spare, _kill_quietly, spare.process)
    if assignments is not None:
        with contextlib.suppress(OSError):
            spare.begin_load(assignments)


def _take_spare(label: str, assignments: list[Assignment]) -> _Process | None:
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is None or not spare.alive():
        return None
    if spare.pending is not None and not same_load(spare.pending, assignments):
        spare.kill()  # it guessed another model or other settings
        return None
    spare.label = label
    return spare


def same_load(ahead: list[Assignment], wanted: list[Assignment]) -> bool:
    """Whether a load sent ahead is the one wanted: the same settings in the same order, but
    for the loopback HTTP key each load makes up — unless the wanted load keeps KV snapshots,
    whose requests need their own key."""
    if any(key == "slot_save_path" for key, _ in wanted):
        return ahead == wanted
    return [a for a in ahead if a[0] != "api_keys"] == [w for w in wanted if w[0] != "api_keys"]


# What the last successful load in this process asked for (``last_loaded``).
_last_loaded: list[Assignment] | None = None


def last_loaded() -> list[Assignment] | None:
    """The assignments of the last model a worker loaded in this process, if any."""
    return _last_loaded


class WorkerServer:
    """``xllamacpp.Server``'s calls, run by a supervised worker process."""

    def __init__(
        self, assignments: list[Assignment], label: str, tuner: ThreadTuner | None = None
    ) -> None:
        self._assignments = assignments
        self.label = label
        #: follows the machine's load for threads Terminus chose (None: the user chose)
        self.tuner = tuner
        self.loads = 0  # how many times a worker loaded the model
        self.load_s = 0.0  # seconds the last load took in the worker
        self._ids = itertools.count(1)
        self._start_lock = threading.Lock()
        self._process: _Process | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The worker's process id while one runs (tests and diagnostics)."""
        process = self._process
        return process.process.pid if process is not None and process.alive() else None

    @property
    def address(self) -> str | None:
        """llama.cpp's HTTP API of the running worker (``http://127.0.0.1:PORT``), if any."""
        process = self._process
        return process.address if process is not None and process.alive() else None

    def start(self) -> _Process:
        """The running worker; starts one and loads the model if none runs."""
        self._follow_machine()
        with self._start_lock:
            process = self._process
            if process is not None and process.alive():
                return process
            if self._closed:
                raise EngineError(f"{self.label} was unloaded")
            if process is not None:
                process.kill()
            process = _take_spare(self.label, self._assignments)
            if process is not None and process.pending is not None:
                self._assignments = process.pending  # the same load, with the key it was sent
                import logging  # only here: an import the cold start does not pay

                logging.getLogger(__name__).info(
                    "%s: using the worker that began loading it ahead", self.label
                )
            process = process or _Process(self.label)
            try:
                self.load_s = process.load(self._assignments)
            except BaseException:
                process.kill()
                raise
            global _last_loaded
            _last_loaded = self._assignments
            weakref.finalize(self, _kill_quietly, process.process)
            self.loads += 1
            self._process = process
            return process

    def open(
        self, method: str, body: Any, *, streamed: bool, stop: Callable[[], bool] | None = None
    ) -> tuple[_Process, Call]:
        """Send one call; its chunks and end arrive on the returned call's queue."""
        call = Call(next(self._ids), stop)
        while True:
            process = self.start()
            with process.lock:
                if not process.retiring:  # else a new worker is on its way: start() waits
                    process.calls[call.id] = call
                    break
        try:
            process.send(("call", call.id, method, body, streamed))
        except OSError as exc:
            process.kill()
            process._fail_all("receiving a request")
            raise process.crashed("receiving a request") from exc
        return process, call

    def _follow_machine(self) -> None:
        """Replace an idle worker whose threads no longer suit the machine (ThreadTuner)."""
        tuner = self.tuner
        if tuner is None or not tuner.due():
            return
        with self._start_lock:
            process = self._process
            if process is None or not process.alive():
                return
            with process.lock:
                if process.calls:
                    return  # its own threads would read as the machine's
                threads = tuner.check()
                if threads is None:
                    return
                process.retiring = True
            self._assignments = with_threads(self._assignments, threads)
            self._process = None
        import logging  # only here: an import the cold start does not pay

        logging.getLogger(__name__).info(
            "%s: the machine's load changed; reloading with %d thread(s)", self.label, threads
        )
        process.stop()

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            process, self._process = self._process, None
        if process is not None:
            process.stop()

    # -- xllamacpp.Server's interface --------------------------------------------

    def handle_chat_completions(
        self, body: Any, callback: Callable[[Any], bool] | None = None
    ) -> Any:
        return self._invoke("handle_chat_completions", body, callback)

    def handle_completions(self, body: Any, callback: Callable[[Any], bool] | None = None) -> Any:
        return self._invoke("handle_completions", body, callback)

    def handle_embeddings(self, body: Any) -> Any:
        return self._invoke("handle_embeddings", body, None)

    def handle_rerank(self, body: Any) -> Any:
        return self._invoke("handle_rerank", body, None)

    def _invoke(self, method: str, body: Any, callback: Callable[[Any], bool] | None) -> Any:
        process, call = self.open(method, body, streamed=callback is not None)
        while True:
            item = call.queue.get()
            if item is END:
                return call.value
            if isinstance(item, BaseException):
                raise item
            if callback is not None and callback(item) and not call.cancel_sent:
                process.cancel(call)
