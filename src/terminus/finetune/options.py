"""What a fine-tuning run is asked to do, and what it reports back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from terminus.errors import InvalidParameterError
from terminus.finetune.lora import ALL_TARGETS


@dataclass(frozen=True)
class FinetuneOptions:
    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ALL_TARGETS
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    epochs: int = 1
    batch_size: int = 4  # examples per optimizer step
    micro_batch_size: int = 1  # examples per forward pass (gradients accumulate)
    context_length: int = 256
    seed: int = 0
    train_on: Literal["assistant", "all"] = "assistant"
    validation_fraction: float = 0.0
    max_steps: int | None = None  # stop earlier than epochs × steps per epoch
    checkpoint_every: int = 0  # steps; 0 = only when stopped
    threads: int | None = None
    replay_prompts: tuple[str, ...] = ()  # general prompts answered by the base, mixed in
    system_prompt: str | None = None  # added to conversations without one (as inference does)

    def __post_init__(self) -> None:
        # 16 and 16.0 are the same run: numbers are normalized before fingerprinting
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "learning_rate", float(self.learning_rate))
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.batch_size < 1 or self.micro_batch_size < 1:
            raise InvalidParameterError("batch sizes must be at least 1")
        if self.batch_size % self.micro_batch_size:
            raise InvalidParameterError("batch_size must be a multiple of micro_batch_size")
        if self.epochs < 1 or self.learning_rate <= 0 or self.context_length < 8:
            raise InvalidParameterError(
                "epochs >= 1, learning_rate > 0 and context_length >= 8 are needed"
            )
        if self.scheduler not in ("cosine", "linear", "constant"):
            raise InvalidParameterError(f"unknown scheduler {self.scheduler!r}")
        if self.train_on not in ("assistant", "all"):
            raise InvalidParameterError("train_on is 'assistant' or 'all'")

    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed (threads and step limits may change)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("threads", "max_steps")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class StepReport:
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    seconds: float
    validation_loss: float | None = None


@dataclass
class FinetuneResult:
    adapter_path: Path
    steps: int
    total_steps: int
    train_losses: list[float]
    validation_losses: list[float]
    seconds_per_step: float
    peak_rss_bytes: int
    stopped_early: bool
    trained: Any = field(default=None, repr=False)  # the PyTorch model, LoRA applied
