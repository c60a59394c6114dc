"""llama.cpp through the prebuilt ``xllamacpp`` wheel, in a supervised worker process.

One ``xllamacpp.Server`` per loaded model runs ``parallel`` slots with
continuous batching. It lives in a worker process (``llamacpp_worker``, driven
through ``llamacpp_proxy``): this module builds the same request bodies and load
settings as in one process, and the worker streams llama.cpp's chunks back. A
cancel still reaches llama.cpp's own stop hook within a token or two; a crash
inside llama.cpp fails the requests in flight with ``WorkerCrashedError`` and the
next request loads the model again. Embedding cards (capability "embed") load
here too; their model is in ``llamacpp_embed``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp_events import translate_chunks
from terminus.engines.llamacpp_kvdisk import SLOT as SNAPSHOT_SLOT
from terminus.engines.llamacpp_kvdisk import KVDiskCache, kv_disk_cache_for, prefix_id
from terminus.engines.llamacpp_params import ParamsRecorder
from terminus.engines.llamacpp_proxy import WorkerServer
from terminus.engines.llamacpp_speculative import (
    check_draft_tokenizer,
    configure_speculative,
    draft_bytes,
    draft_file,
    speculative_plan,
)
from terminus.engines.llamacpp_threads import (
    SPIN_COUNT_ENV,
    WAIT_POLICY_ENV,
    ThreadTuner,
    busy_elsewhere,
    threads_for,
)
from terminus.engines.llamacpp_vision import projector_bytes
from terminus.engines.tool_prompting import (
    rewrite_history,
    tool_call_schema,
    tool_system_prompt,
)
from terminus.errors import (
    CapabilityError,
    EngineError,
    EngineUnavailableError,
    InvalidModelFileError,
    InvalidParameterError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard, check_can_see
from terminus.models.gguf import estimate_load_bytes, validate_gguf
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Done,
    GenerationParams,
    Message,
    Stats,
    TextRequest,
    Tool,
)
from terminus.types.common import Capability, model_kind

if TYPE_CHECKING:
    from terminus.engines.llamacpp_embed import LlamaCppEmbedModel

DEFAULT_CONTEXT = 2048
DEFAULT_PARALLEL = 4
# llama.cpp keeps the KV state of past prompts in RAM to reuse them (its server's
# --cache-ram). Its own default, 8 GiB per model, lets memory grow ~1 MB per distinct
# prompt far past any budget; this bound is counted in the model's memory instead.
DEFAULT_PROMPT_CACHE_MIB = 256
PROMPT_CACHE_KEY = "prompt_cache_mib"
MIB = 1 << 20


THREADS_ENV = "TERMINUS_THREADS"


def threads_override() -> int | None:
    """``TERMINUS_THREADS`` when it names a thread count."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def default_threads() -> int:
    """Physical cores this process may use (llama.cpp slows down on hyperthreads).

    ``TERMINUS_THREADS`` overrides it. llama.cpp models take fewer when other work keeps
    cores busy at load (:func:`llama_threads`).
    """
    override = threads_override()
    if override is not None:
        return override
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        physical = None
    return max(1, min(n for n in (physical, usable, os.cpu_count()) if n))


def llama_threads() -> int:
    """llama.cpp's threads when the user chose none: the physical cores, or only those left
    free when other work keeps some busy (see llamacpp_threads for why and how)."""
    return threads_override() or threads_for(default_threads())


def _thread_tuner(options: LoadOptions) -> ThreadTuner | None:
    """A tuner when Terminus chooses the threads and their wait policy; None when the user
    fixed either (a load option, ``TERMINUS_THREADS``, or OpenMP's own variables)."""
    if options.threads or threads_override() or WAIT_POLICY_ENV in os.environ:
        return None
    if SPIN_COUNT_ENV in os.environ:
        return None
    return ThreadTuner(default_threads(), busy_elsewhere())


def prompt_cache_mib(card: ModelCard, options: LoadOptions) -> int:
    """MiB of past prompts' KV state llama.cpp may keep: load option, else card, else default.

    0 turns the cache off (a repeated prompt is then processed again in full).
    """
    value = options.extra.get(PROMPT_CACHE_KEY, card.defaults.get(PROMPT_CACHE_KEY))
    if value is None:
        return DEFAULT_PROMPT_CACHE_MIB
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InvalidParameterError(
            f"{PROMPT_CACHE_KEY} must be a whole number of MiB (0 turns it off), not {value!r}"
        )
    return int(value)


class LlamaCppEngine:
    name: ClassVar[str] = "llamacpp"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CHAT, Capability.COMPLETION, Capability.EMBED}
    )

    @classmethod
    def probe(cls) -> Availability:
        # Found, not imported: the host never needs xllamacpp itself (the worker does).
        if importlib.util.find_spec("xllamacpp") is None:
            return Availability(False, "xllamacpp is not installed; pip install xllamacpp")
        try:
            version: str | None = importlib.metadata.version("xllamacpp")
        except importlib.metadata.PackageNotFoundError:
            version = None
        return Availability(True, "llama.cpp via xllamacpp (runs in a worker process)", version)

    def resolve(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> tuple[int, int]:
        """(context per slot, slots) after defaults and the model's trained context."""
        header = validate_gguf(files.main)
        context = options.context_length or int(
            card.defaults.get("context_length", DEFAULT_CONTEXT)
        )
        if header.context_length:
            context = min(context, header.context_length)
        parallel = options.parallel or int(card.defaults.get("parallel", DEFAULT_PARALLEL))
        if context < 16 or parallel < 1:
            raise InvalidParameterError("context_length must be >= 16 and parallel >= 1")
        return context, parallel

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        """Weights and KV cache, plus the prompt cache's bound (it fills up as prompts vary)."""
        context, parallel = self.resolve(card, files, options)
        kv_and_weights = estimate_load_bytes(validate_gguf(files.main), context * parallel)
        return (
            kv_and_weights.total_bytes
            + draft_bytes(card, options, context * parallel)
            + prompt_cache_mib(card, options) * MIB
            + projector_bytes(card, files)
        )

    def load(
        self, card: ModelCard, files: ModelFiles, options: LoadOptions
    ) -> LlamaCppChatModel | LlamaCppEmbedModel:
        if card.capability not in self.capabilities:
            raise CapabilityError(
                f"{card.id} is {model_kind(card.capability)}; "
                "llama.cpp runs chat, completion and embedding models"
            )
        available = self.probe()
        if not available.ok:
            raise EngineUnavailableError(available.detail)
        context, parallel = self.resolve(card, files, options)
        tuner = _thread_tuner(options)
        threads = options.threads or (tuner.current[0] if tuner is not None else llama_threads())
        params: Any = ParamsRecorder()  # written here, built by the worker process
        params.model.path = str(files.main)
        params.n_ctx = context * parallel
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        if options.batch_size:
            params.n_batch = options.batch_size
        params.verbosity = -1
        params.cache_ram_mib = prompt_cache_mib(card, options)
        embedding = card.capability == Capability.EMBED
        kv_cache: KVDiskCache | None = None
        if embedding:
            from terminus.engines.llamacpp_embed import configure_embedding

            configure_embedding(params, card, context)
        else:
            params.use_jinja = True
            if card.defaults.get("lora_adapter"):
                from terminus.engines.llamacpp_lora import attach_adapter

                attach_adapter(params, card, files)
            template = options.chat_template or card.chat_template
            if template:
                params.chat_template = template
            plan = speculative_plan(card, options)
            if plan is not None:
                draft_path = draft_file(options)
                if draft_path is not None:
                    check_draft_tokenizer(
                        validate_gguf(files.main),
                        validate_gguf(draft_path),
                        card.id,
                        str(plan.draft_model),
                    )
                configure_speculative(params, plan, draft_path, threads)
            kv_cache = kv_disk_cache_for(
                card, files, options, template, context, f"xllamacpp {available.version}"
            )
            if kv_cache is not None:
                params.slot_save_path = kv_cache.slot_save_path
            projector = card.defaults.get("mmproj")
            if projector:  # a vision model's image encoder, pulled with it from the Hub
                if projector not in files.paths:
                    raise InvalidModelFileError(
                        f"{card.id}: mmproj {projector!r} is not one of its files"
                    )
                params.mmproj.path = str(files.paths[projector])
        # The worker's llama.cpp also answers HTTP on a loopback port: only a caller holding
        # this load's key may use it (Terminus itself calls it in process, without HTTP).
        params.api_keys = [kv_cache.api_key if kv_cache is not None else secrets.token_urlsafe(24)]
        server = WorkerServer(params.assignments, card.id, tuner)
        server.start()  # loads now, so a bad file fails the load, not the first request
        header = validate_gguf(files.main)
        memory = estimate_load_bytes(header, context * parallel).total_bytes
        memory += params.cache_ram_mib * MIB + projector_bytes(card, files)
        if not embedding:
            memory += draft_bytes(card, options, context * parallel)
        try:
            if embedding:
                from terminus.engines.llamacpp_embed import LlamaCppEmbedModel

                return LlamaCppEmbedModel(
                    card, server, context, parallel, memory, header.embedding_length
                )
            return LlamaCppChatModel(card, server, context, parallel, memory, kv_cache)
        except BaseException:
            server.close()
            raise


class LlamaCppChatModel:
    def __init__(
        self,
        card: ModelCard,
        server: Any,
        context: int,
        parallel: int,
        memory: int,
        kv_cache: KVDiskCache | None = None,
    ) -> None:
        self.card = card
        #: KV snapshots of long prompt prefixes on disk (``kv_disk_cache``), or None.
        self.kv_cache = kv_cache
        self.context_length = context
        self.parallel = parallel
        self.memory_bytes = memory
        self._server = server
        self._tool_mode = str(card.defaults.get("tool_mode", "prompted"))

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    @property
    def server(self) -> WorkerServer | None:
        """The worker-backed stand-in for ``xllamacpp.Server`` (same ``handle_*`` calls)."""
        return self._server

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one runs (tests and diagnostics)."""
        return None if self._server is None else self._server.pid

    # -- request building ------------------------------------------------------

    def build_body(self, request: ChatRequest) -> tuple[dict[str, Any], str]:
        """The OpenAI-shaped body llama.cpp takes, and how tool calls will arrive."""
        params = request.params.merged_over(self.card.defaults)
        messages = list(request.messages)
        tools = request.tools if request.tool_choice != "none" else ()
        tool_plan = "none"
        body: dict[str, Any] = {}
        if tools and self._tool_mode == "native":
            tool_plan = "native"
            body["tools"] = [{"type": "function", "function": t.model_dump()} for t in tools]
            body["tool_choice"] = _native_choice(request.tool_choice)
        elif tools:
            messages = rewrite_history(request.messages)
            required = request.tool_choice not in ("auto", "none")
            only = request.tool_choice if required and request.tool_choice != "required" else None
            if only is not None and only not in {t.name for t in tools}:
                raise InvalidParameterError(f"tool_choice names unknown tool {only!r}")
            messages = _with_system(
                messages, self._system_prompt(), tool_system_prompt(tools, required)
            )
            tool_plan = "required" if required else "auto"
            if required:
                body["response_format"] = _schema_format(tool_call_schema(tools, only))
        elif request.tools or any(m.role == "tool" for m in messages):
            messages = rewrite_history(request.messages)
        if tool_plan == "none" or tool_plan == "native":
            messages = _with_system(messages, self._system_prompt(), None)
        if any(m.images for m in messages):
            check_can_see(self.card)
        body["messages"] = [_message_dict(m) for m in messages]
        if request.response_format is not None and "response_format" not in body:
            rf = request.response_format
            if rf.type == "json_schema" and rf.json_schema is not None:
                body["response_format"] = _schema_format(rf.json_schema)
            elif rf.type == "json_object":
                body["response_format"] = {"type": "json_object"}
        body.update(_sampling(params))
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        body["timings_per_token"] = True  # token counts even when cancelled (no usage chunk)
        return body, tool_plan

    def _system_prompt(self) -> str | None:
        value = self.card.defaults.get("system_prompt")
        return str(value) if value else None

    # -- streaming ---------------------------------------------------------------

    @property
    def _slots(self) -> tuple[int, int]:
        """(context per request, slots), to name in a context overflow."""
        return self.context_length, self.parallel

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        body, tool_plan = self.build_body(request)
        if (
            self.kv_cache is None
            or len(body["messages"]) < 2
            or request.params.cache_prompt is False
        ):
            if self.kv_cache is not None:
                self.kv_cache.in_slot = None  # this request may land in the snapshot slot
            return self._stream("handle_chat_completions", body, request.tools, tool_plan, cancel)
        return self._chat_with_snapshot(body, request.tools, tool_plan, cancel)

    def _chat_with_snapshot(
        self, body: dict[str, Any], tools: tuple[Tool, ...], tool_plan: str, cancel: CancelToken
    ) -> Iterator[ChatEvent]:
        """Restore the KV state of the messages before the last one, or save it afterwards."""
        cache, server = self.kv_cache, self._server
        assert cache is not None
        prefix = prefix_id(body["messages"][:-1])
        address = None if server is None else server.start().address
        started = time.perf_counter()  # the restore counts in the time to first token
        cache.restore(address, prefix)
        body["id_slot"] = SNAPSHOT_SLOT  # where the state was restored (and is saved from)
        prompt_tokens = 0
        events = self._stream("handle_chat_completions", body, tools, tool_plan, cancel, started)
        for event in events:
            if isinstance(event, Stats):
                prompt_tokens = event.prompt_tokens
            elif isinstance(event, Done) and event.stop_reason != "cancelled":
                cache.save(address, prefix, prompt_tokens)
            yield event

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        params = request.params.merged_over(self.card.defaults)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "stream": True,
            "stream_options": {"include_usage": True},
            "timings_per_token": True,
        }
        body.update(_sampling(params))
        if request.response_format is not None and request.response_format.json_schema:
            body["json_schema"] = request.response_format.json_schema
        return self._stream("handle_completions", body, (), "none", cancel)

    def _stream(
        self,
        method: str,
        body: dict[str, Any],
        tools: tuple[Tool, ...],
        tool_plan: str,
        cancel: CancelToken,
        started: float | None = None,
    ) -> Iterator[ChatEvent]:
        server = self._server
        if server is None:
            raise EngineError(f"{self.card.id} was unloaded")
        started = time.perf_counter() if started is None else started
        process, call = server.open(method, body, streamed=True, stop=lambda: cancel.cancelled)
        try:
            yield from translate_chunks(call.queue, tools, tool_plan, cancel, started, self._slots)
        finally:
            if not call.finished:  # the consumer left early: stop llama.cpp too
                cancel.cancel()
                process.cancel(call)


def _sampling(params: GenerationParams) -> dict[str, Any]:
    """Sampling fields in llama.cpp's request vocabulary (the same names as ours)."""
    names = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "max_tokens")
    body: dict[str, Any] = {n: getattr(params, n) for n in names if getattr(params, n) is not None}
    if params.stop:
        body["stop"] = list(params.stop)
    if params.top_logprobs:
        body["n_probs"] = params.top_logprobs  # pre-sampling softmax over the whole vocabulary
    if params.cache_prompt is not None:
        body["cache_prompt"] = params.cache_prompt
    if params.lora_scale is not None:
        body["lora"] = [{"id": 0, "scale": params.lora_scale}]  # the card's one adapter
    return body


def _native_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def _with_system(messages: list[Message], default: str | None, extra: str | None) -> list[Message]:
    """Ensure a system message (small models drift without one) and append tool instructions."""
    if messages and messages[0].role == "system":
        base = messages[0].content or ""
        rest = messages[1:]
    else:
        base = default or ""
        rest = messages
    text = "\n\n".join(part for part in (base, extra) if part)
    return ([Message(role="system", content=text)] if text else []) + rest


def _message_dict(m: Message) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {"role": m.role, "content": m.content or ""}
    if m.images:  # OpenAI content parts: llama.cpp's mtmd reads the data URLs
        out["content"] = [
            *({"type": "image_url", "image_url": {"url": _data_url(b64)}} for b64 in m.images),
            {"type": "text", "text": m.content or ""},
        ]
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.name and m.role == "tool":
        out["name"] = m.name
    return out


def _data_url(b64: str) -> str:
    kind = "png" if b64.startswith("iVBOR") else "jpeg"  # base64 of the PNG / JPEG magic
    return f"data:image/{kind};base64,{b64}"
