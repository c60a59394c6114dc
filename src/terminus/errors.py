"""The Terminus error tree.

Every error is rooted at :class:`TerminusError` and also inherits the builtin it
resembles, so ``except KeyError`` keeps working for callers who don't know us.
CLI exit codes and HTTP statuses are class attributes: adapters map by type,
never by message text.
"""

from __future__ import annotations


class TerminusError(Exception):
    """Base of every error Terminus raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "terminus_error"

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and hint on a single line, for CLIs and logs."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({self.hint})"
        return text


class ModelNotFoundError(TerminusError, KeyError):
    """No model card matches the id or alias."""

    exit_code = 3
    http_status = 404
    code = "model_not_found"


class InvalidModelFileError(TerminusError, ValueError):
    """A model file is not what its card says it is."""

    exit_code = 4
    http_status = 422
    code = "invalid_model_file"


class NotGGUFError(InvalidModelFileError):
    """The file does not start with the GGUF magic."""

    code = "not_gguf"


class TruncatedModelError(InvalidModelFileError):
    """The file ends before the data its header describes."""

    code = "truncated_model"


class CorruptTensorDataError(InvalidModelFileError):
    """A GGUF's header is valid but its tensor data cannot be a model's (NaN scales,
    blank data). GGUF has no checksum for tensor data: this is a sampled check."""

    code = "corrupt_tensor_data"


class ChecksumMismatchError(TerminusError, ValueError):
    """Bytes from a source do not hash to the sha256 the card pins."""

    exit_code = 5
    http_status = 502
    code = "checksum_mismatch"


class SourceUnavailableError(TerminusError, ConnectionError):
    """No source could deliver a model file (offline, package missing, HTTP error)."""

    exit_code = 6
    http_status = 503
    code = "source_unavailable"


class ModelNotCachedError(SourceUnavailableError):
    """The model is not in the cache and downloading was not allowed."""

    code = "model_not_cached"


class OfflineError(SourceUnavailableError):
    """A model must come from the network, but downloads are off or the host is unreachable."""

    code = "offline"


class RemoteModelNotFoundError(ModelNotFoundError):
    """A model hub has no such repository, revision or file (or nothing matching the request)."""

    code = "remote_model_not_found"


class GatedModelError(TerminusError, PermissionError):
    """A model hub refused the files: the repository is gated or private and the token
    is missing or lacks access."""

    exit_code = 25
    http_status = 403
    code = "gated_model"


class InsufficientMemoryError(TerminusError, MemoryError):
    """Loading the model would not fit in the memory available or the budget."""

    exit_code = 7
    http_status = 507
    code = "insufficient_memory"


class ContextLengthExceededError(TerminusError, ValueError):
    """The prompt does not fit in the model's context window."""

    exit_code = 8
    http_status = 400
    code = "context_length_exceeded"


class InvalidParameterError(TerminusError, ValueError):
    """A request parameter is out of range or malformed."""

    exit_code = 9
    http_status = 400
    code = "invalid_parameter"


class InvalidSchemaError(InvalidParameterError):
    """A JSON schema given for constrained output is not a valid schema."""

    code = "invalid_schema"


class CapabilityError(InvalidParameterError):
    """The model cannot do what was asked (e.g. chat with an embedding model)."""

    code = "capability_not_supported"


class EngineUnavailableError(TerminusError, RuntimeError):
    """The engine a model needs is not installed or cannot run here."""

    exit_code = 10
    http_status = 503
    code = "engine_unavailable"


class EngineError(TerminusError, RuntimeError):
    """The engine failed while loading or running a model."""

    exit_code = 11
    http_status = 500
    code = "engine_error"


class ModelBusyError(TerminusError, RuntimeError):
    """The model is serving requests and cannot be unloaded now."""

    exit_code = 13
    http_status = 409
    code = "model_busy"


class CacheLockTimeoutError(TerminusError, TimeoutError):
    """Another process held a cache lock for too long."""

    exit_code = 12
    http_status = 503
    code = "cache_busy"


class WorkspaceNotFoundError(TerminusError, KeyError):
    """No RAG workspace has that name."""

    exit_code = 14
    http_status = 404
    code = "workspace_not_found"


class DocumentNotFoundError(TerminusError, KeyError):
    """No document in the workspace has that id (or source)."""

    exit_code = 20
    http_status = 404
    code = "document_not_found"


class WorkspaceModelMismatchError(TerminusError, ValueError):
    """A workspace is bound to another embedding model than the one asked for."""

    exit_code = 15
    http_status = 409
    code = "workspace_model_mismatch"


class UnsupportedDocumentError(TerminusError, ValueError):
    """A document's type is not supported, or its bytes cannot be decoded or parsed."""

    exit_code = 16
    http_status = 415
    code = "unsupported_document"


class InputFileError(TerminusError, OSError):
    """A file given as input (audio, image, text) is missing or cannot be read."""

    exit_code = 24
    http_status = 422
    code = "input_unreadable"


class DocumentReadError(TerminusError, OSError):
    """A document file (RAG ingest) is missing or cannot be read."""

    exit_code = 19
    http_status = 422
    code = "document_unreadable"


class EmptyDocumentError(TerminusError, ValueError):
    """A document has no text to index (an empty file, a PDF without a text layer)."""

    exit_code = 17
    http_status = 422
    code = "empty_document"


class DimensionMismatchError(TerminusError, ValueError):
    """A vector's dimension differs from the one the workspace stores."""

    exit_code = 18
    http_status = 422
    code = "dimension_mismatch"


class InvalidAudioError(TerminusError, ValueError):
    """Audio that cannot be decoded, has no samples, or comes with a bad sample rate."""

    exit_code = 21
    http_status = 415
    code = "invalid_audio"


class InvalidImageError(TerminusError, ValueError):
    """An image that cannot be decoded (corrupt bytes, not an image, empty)."""

    exit_code = 22
    http_status = 415
    code = "invalid_image"


class ChatImageError(InvalidImageError):
    """An image in a chat message that cannot be used: corrupt, truncated, an unsupported
    format, too large, or a URL that may not be fetched. A bad request (HTTP 400)."""

    exit_code = 22
    http_status = 400
    code = "invalid_chat_image"


class UnsupportedLanguageError(TerminusError, ValueError):
    """A translation model does not cover the language pair asked for."""

    exit_code = 23
    http_status = 400
    code = "unsupported_language"


class BenchmarkDataError(TerminusError, ValueError):
    """A benchmark file is missing, malformed, or not one of the shapes the loaders read."""

    exit_code = 55
    http_status = 422
    code = "benchmark_data_invalid"


class EvalRunNotFoundError(TerminusError, FileNotFoundError):
    """No evaluation run (results JSON) at the path given."""

    exit_code = 56
    http_status = 404
    code = "eval_run_not_found"


class IncomparableRunsError(TerminusError, ValueError):
    """Two runs share no benchmark items, so a paired comparison means nothing."""

    exit_code = 57
    http_status = 409
    code = "incomparable_runs"


class JudgeOutputError(TerminusError, RuntimeError):
    """A grading model kept answering in a shape that cannot be read, after retries."""

    exit_code = 58
    http_status = 502
    code = "judge_output_invalid"


class DatasetError(TerminusError, ValueError):
    """A training dataset is malformed (the message names the line) or has nothing to learn."""

    exit_code = 40
    http_status = 422
    code = "invalid_dataset"


class UnsupportedArchitectureError(TerminusError, ValueError):
    """Fine-tuning or quantization does not support this model architecture."""

    exit_code = 41
    http_status = 422
    code = "unsupported_architecture"


class AdapterMismatchError(TerminusError, ValueError):
    """A LoRA adapter was trained on another base model than the one it is applied to."""

    exit_code = 42
    http_status = 409
    code = "adapter_base_mismatch"


class UnknownQuantizationError(TerminusError, ValueError):
    """The quantization type does not exist (or cannot be produced here)."""

    exit_code = 43
    http_status = 400
    code = "unknown_quantization_type"


class CheckpointError(TerminusError, ValueError):
    """A training checkpoint is missing, corrupt, or belongs to another run."""

    exit_code = 44
    http_status = 409
    code = "invalid_checkpoint"


class WorkerCrashedError(EngineError):
    """A worker process running a native engine died; the host survives and the
    next request starts a fresh worker. An ``EngineError``, with its exit code."""

    http_status = 500
    code = "worker_crashed"


class GenerationCancelledError(TerminusError, RuntimeError):
    """A generation was cancelled before it produced a result."""

    exit_code = 51
    http_status = 499  # the client went away (nginx's convention)
    code = "generation_cancelled"


class PeerUnavailableError(TerminusError, ConnectionError):
    """A peer could not be reached, or the connection to it was lost mid-request."""

    exit_code = 30
    http_status = 503
    code = "peer_unavailable"


class PeerRefusedError(TerminusError, PermissionError):
    """A provider refused the request: key not allowed, or a bad, expired or replayed token."""

    exit_code = 31
    http_status = 403
    code = "peer_refused"


class PeerBusyError(TerminusError, RuntimeError):
    """A provider is at its limit of concurrent requests."""

    exit_code = 32
    http_status = 429
    code = "peer_busy"


class ToolServerError(TerminusError, ConnectionError):
    """An MCP tool server could not be started or reached, or went away."""

    exit_code = 60
    http_status = 502
    code = "tool_server_error"


__all__ = [
    "PeerBusyError",
    "PeerRefusedError",
    "PeerUnavailableError",
    "CacheLockTimeoutError",
    "CapabilityError",
    "ChecksumMismatchError",
    "ContextLengthExceededError",
    "DimensionMismatchError",
    "DocumentNotFoundError",
    "DocumentReadError",
    "InputFileError",
    "EmptyDocumentError",
    "EngineError",
    "EngineUnavailableError",
    "InsufficientMemoryError",
    "InvalidModelFileError",
    "InvalidParameterError",
    "InvalidSchemaError",
    "ModelBusyError",
    "ModelNotCachedError",
    "OfflineError",
    "RemoteModelNotFoundError",
    "GatedModelError",
    "ModelNotFoundError",
    "NotGGUFError",
    "SourceUnavailableError",
    "TerminusError",
    "TruncatedModelError",
    "CorruptTensorDataError",
    "UnsupportedDocumentError",
    "WorkspaceModelMismatchError",
    "WorkspaceNotFoundError",
    "InvalidAudioError",
    "InvalidImageError",
    "ChatImageError",
    "UnsupportedLanguageError",
    "BenchmarkDataError",
    "EvalRunNotFoundError",
    "IncomparableRunsError",
    "JudgeOutputError",
    "DatasetError",
    "UnsupportedArchitectureError",
    "AdapterMismatchError",
    "UnknownQuantizationError",
    "CheckpointError",
    "WorkerCrashedError",
    "GenerationCancelledError",
    "ToolServerError",
]
