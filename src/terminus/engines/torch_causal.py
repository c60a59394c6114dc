"""A GGUF chat model as a PyTorch (transformers) model, dequantized to float32.

Fine-tuning trains on it and importance matrices are measured with it. The weights
come from the very GGUF the user runs: transformers reads llama and qwen2 GGUF
files (through the ``gguf`` package) and undoes the q/k row permutation the GGUF
conversion applied. Other architectures are refused: Gemma-3 loaded this way did
not produce sane output.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import EngineUnavailableError, UnsupportedArchitectureError
from terminus.models.gguf import read_gguf_header

TRAINABLE_ARCHITECTURES = ("llama", "qwen2")


@dataclass
class TorchCausalLM:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    architecture: str
    n_heads: int
    n_kv_heads: int


def require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailableError(
            f"fine-tuning and importance matrices need torch and transformers ({exc})",
            hint="pip install torch==2.13.0 && pip install 'terminus-sdk[train]'",
        ) from exc
    return torch


def check_architecture(path: Path) -> str:
    arch = read_gguf_header(path).architecture or "?"
    if arch not in TRAINABLE_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{path.name} is a {arch} model; fine-tuning and importance matrices support "
            + ", ".join(TRAINABLE_ARCHITECTURES)
        )
    return arch


def load_torch_model(path: Path, *, threads: int | None = None) -> TorchCausalLM:
    """Load ``path`` (a GGUF) as a float32 transformers causal LM in eval mode."""
    arch = check_architecture(path)
    torch = require_torch()
    if threads:
        torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder, name = str(path.parent), path.name
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    config = model.config
    return TorchCausalLM(
        model=model,
        tokenizer=tokenizer,
        architecture=arch,
        n_heads=int(config.num_attention_heads),
        n_kv_heads=int(getattr(config, "num_key_value_heads", config.num_attention_heads)),
    )
