"""One model's layers spread over this machine and RPC workers (llama.cpp's RPC backend).

``SplitModel`` opens an :class:`RpcTunnel` to each worker (the RPC bytes travel inside the
authenticated peer channel), then starts Terminus's llama.cpp host with the tunnel ports as
its RPC devices. The host keeps ``local_share`` of the layers on this machine's CPU and
llama.cpp spreads the rest over the workers in proportion to the free memory each reports
(or as ``tensor_split`` says). A worker that disappears aborts the host process: the request
in flight raises ``PeerUnavailableError`` and this process carries on; load the model again
without that worker.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import subprocess
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from terminus.errors import (
    EngineError,
    InsufficientMemoryError,
    InvalidParameterError,
    PeerUnavailableError,
)
from terminus.models.gguf import estimate_load_bytes, read_gguf_header
from terminus.p2p.identity import Identity
from terminus.p2p.node import NodeRef
from terminus.p2p.rpc_binaries import host_binary
from terminus.p2p.rpc_tunnel import RpcTunnel

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sampling:
    """llama.cpp's sampler chain: top-k (0: off), top-p, temperature (0: greedy), seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0xFFFFFFFF  # llama.cpp's "random seed"


@dataclass(frozen=True)
class SplitToken:
    token_id: int
    text: str


@dataclass(frozen=True)
class SplitDone:
    prompt_tokens: int
    completion_tokens: int
    stop_reason: str


def default_local_share(workers: int) -> float:
    """The part of the layers kept on this machine: an equal share with each worker."""
    return 1 / (workers + 1)


class SplitModel:
    def __init__(
        self,
        gguf: Path,
        workers: Sequence[NodeRef],
        identity: Identity,
        home: Path,
        *,
        threads: int = 1,
        context_length: int = 1024,
        local_share: float | None = None,
        tensor_split: Sequence[float] | None = None,
        route: Callable[[str], str] | None = None,
    ) -> None:
        """``local_share``: the part of the layers kept here (default: an equal share with
        each worker). ``tensor_split``: the workers' relative shares of the rest. ``route``
        maps each tunnel endpoint to the one llama.cpp dials (a bench puts a delay there)."""
        if tensor_split is not None and len(tensor_split) != len(workers):
            raise InvalidParameterError("tensor_split needs one share per worker")
        share = default_local_share(len(workers)) if local_share is None else local_share
        if workers and not 0.0 <= share < 1.0:
            raise InvalidParameterError("local_share must be in [0, 1)")
        self.gguf = gguf
        self.workers = list(workers)
        header = read_gguf_header(gguf)
        self.layers = header.block_count or 0
        self.remote_layers = round(self.layers * (1 - share)) if workers else 0
        #: what the workers must hold together: their layers' weights and KV cache
        whole = estimate_load_bytes(header, context_length).total_bytes
        self.remote_bytes = whole * self.remote_layers // max(1, self.layers)
        self._host = host_binary(home)
        self._identity = identity
        self._threads = threads
        self._context = context_length
        self._tensor_split = tensor_split
        self._route = route or (lambda endpoint: endpoint)
        self._tunnel: RpcTunnel | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> SplitModel:
        """Reach every worker (typed errors: refused, unreachable), then load the model."""
        args = [str(self._host), "-m", str(self.gguf), "-t", str(self._threads)]
        args += ["-c", str(self._context)]
        if self.workers:
            self._tunnel = RpcTunnel(self._identity, self.workers)
            endpoints = [self._route(e) for e in self._tunnel.start()]
            args += ["--rpc", ",".join(endpoints), "-ngl", str(self.remote_layers)]
            args += ["--need-remote", str(self.remote_bytes)]
            if self._tensor_split is not None:
                args += ["--ts", ",".join(f"{s:g}" for s in self._tensor_split)]
        # ggml's abort (a lost worker) would attach a debugger that writes to our pipe
        env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        line = self._line()
        if line.startswith("X MEM "):
            self.close()
            free, need = (int(v) for v in line.split()[2:4])
            raise InsufficientMemoryError(
                f"the workers have {free / MIB:.0f} MiB free together; their "
                f"{self.remote_layers} of {self.layers} layers need about {need / MIB:.0f} MiB",
                hint="add a worker, keep more layers here (local_share), or use a smaller model",
            )
        if not line.startswith("READY"):
            self.close()
            raise EngineError(f"the split model did not load: {line or 'the host exited'}")
        return self

    def generate(
        self,
        prompt: str | Sequence[tuple[str, str]],
        max_tokens: int,
        *,
        chat: bool = True,
        sampling: Sampling | None = None,
    ) -> Generator[object, None, None]:
        """Tokens (``SplitToken``), then a ``SplitDone``.

        ``prompt`` is one user message (``chat``), raw text (``chat=False``), or a conversation
        of ``(role, content)`` pairs; either way the GGUF's chat template is applied by llama.cpp.
        Greedy unless ``sampling`` asks for a temperature above 0.
        """
        if self._proc is None or self._proc.stdin is None:
            raise EngineError("the split model is not loaded")
        if isinstance(prompt, str):
            data = prompt.encode()
            kind = "CHAT" if chat else "GEN"
        else:
            if any("\0" in role or "\0" in content for role, content in prompt):
                raise InvalidParameterError("a message holds a NUL character")
            data = b"".join(f"{role}\0{content}\0".encode() for role, content in prompt)
            kind = "MSGS"
        header = f"{kind} {max_tokens} {len(data)}"
        if sampling is not None:
            header += (
                f" {sampling.temperature:g} {sampling.top_p:g} {sampling.top_k} {sampling.seed}"
            )
        try:
            self._proc.stdin.write(f"{header}\n".encode() + data)
            self._proc.stdin.flush()
        except OSError as exc:
            raise self._lost() from exc
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        finished = False
        try:
            while True:
                line = self._line()
                if not line:
                    raise self._lost()
                kind, _, rest = line.partition(" ")
                if kind == "T":
                    token, _, hexed = rest.partition(" ")
                    # a character may span tokens: decode the stream, not each piece
                    yield SplitToken(int(token), decoder.decode(bytes.fromhex(hexed)))
                elif kind == "E":
                    finished = True
                    prompt_tokens, generated, reason = rest.split()
                    yield SplitDone(int(prompt_tokens), int(generated), reason)
                    return
                elif kind == "X":
                    finished = True
                    raise EngineError(f"split model: {rest}")
                # anything else is not the host's protocol (a library's stray output): skipped
        finally:
            if not finished:
                self._cancel()

    def _cancel(self) -> None:
        """Stop a generation the caller left early; the next request starts clean."""
        if self._proc is None or self._proc.stdin is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            self._proc.stdin.write(b"CANCEL\n")
            self._proc.stdin.flush()
            while line := self._line():
                if line.startswith(("E ", "X ")):
                    return

    def text(self, prompt: str, max_tokens: int, *, chat: bool = True) -> str:
        return "".join(
            e.text
            for e in self.generate(prompt, max_tokens, chat=chat)
            if isinstance(e, SplitToken)
        )

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._release()
        if self._tunnel is not None:
            self._tunnel.close()
            self._tunnel = None

    def __enter__(self) -> SplitModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.readline().decode(errors="replace").rstrip("\n")

    def _release(self) -> None:
        if self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
        self._proc = None

    def _lost(self) -> PeerUnavailableError:
        code = self._proc.wait(timeout=10) if self._proc is not None else None
        self._release()
        return PeerUnavailableError(
            f"the split model stopped (host exit code {code}): an RPC worker was lost or failed",
            hint="load the model again without that worker",
        )
