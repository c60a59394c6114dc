"""The LoRA training loop: masked loss, accumulation, warm-up + schedule, checkpoints, resume."""

from __future__ import annotations

import hashlib
import math
import random
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminus.engines.torch_causal import TorchCausalLM, load_torch_model
from terminus.errors import DatasetError
from terminus.finetune.checkpoint import (
    clear_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from terminus.finetune.data import Example, check_trainable
from terminus.finetune.encode import IGNORE, Encoded, encode
from terminus.finetune.lora import add_lora, load_lora_state, lora_state, write_adapter
from terminus.finetune.options import FinetuneOptions, FinetuneResult, StepReport

REPLAY_MAX_TOKENS = 64


def _schedule(options: FinetuneOptions, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < options.warmup_steps:
            return (step + 1) / (options.warmup_steps + 1)
        if options.scheduler == "constant":
            return 1.0
        span = max(1, total - options.warmup_steps)
        done = min(1.0, (step - options.warmup_steps) / span)
        if options.scheduler == "linear":
            return 1.0 - done
        return 0.5 * (1.0 + math.cos(math.pi * done))

    return factor


def replay_examples(
    loaded: TorchCausalLM, prompts: tuple[str, ...], system: str | None
) -> list[Example]:
    """The base model's own greedy answers to general prompts, to train alongside new data."""
    import torch

    from terminus.finetune.encode import with_system

    out = []
    for prompt in prompts:
        messages = with_system(({"role": "user", "content": prompt},), system)
        ids = loaded.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        with torch.no_grad():
            generated = loaded.model.generate(
                ids, max_new_tokens=REPLAY_MAX_TOKENS, do_sample=False
            )
        answer = loaded.tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True)
        out.append(
            Example(
                messages=(
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": answer.strip()},
                )
            )
        )
    return out


def _batch_loss(model: Any, batch: list[Encoded], pad_id: int) -> tuple[Any, int]:
    """Summed token cross-entropy of ``batch`` (padded) and the number of trained tokens."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.input_ids)] = 1
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss, int((target != IGNORE).sum())


def _mean_loss(model: Any, data: list[Encoded], pad_id: int, micro: int) -> float | None:
    import torch

    if not data:
        return None
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), micro):
            loss, n = _batch_loss(model, data[i : i + micro], pad_id)
            total += float(loss)
            count += n
    return total / max(count, 1)


def _fingerprint(options: FinetuneOptions, data: list[Encoded], base_sha256: str) -> str:
    digest = hashlib.sha256(f"{options.fingerprint()}:{base_sha256}".encode())
    for e in data:
        digest.update(repr((e.input_ids, e.labels)).encode())
    return digest.hexdigest()[:24]


def train_lora(
    base_path: Path,
    train: list[Example],
    validation: list[Example],
    options: FinetuneOptions,
    *,
    output: Path,
    base_id: str,
    base_sha256: str,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    loaded: TorchCausalLM | None = None,
) -> FinetuneResult:
    """Train a LoRA adapter on ``train`` and write it to ``output`` (GGUF)."""
    import torch

    assistant_only = options.train_on == "assistant"
    check_trainable(train, assistant_only=assistant_only, name="the training data")
    loaded = loaded or load_torch_model(base_path, threads=options.threads)
    model, tokenizer = loaded.model, loaded.tokenizer
    if options.replay_prompts:
        train = train + replay_examples(loaded, options.replay_prompts, options.system_prompt)

    def enc(examples: list[Example]) -> list[Encoded]:
        return [
            encode(
                e,
                tokenizer,
                max_tokens=options.context_length,
                assistant_only=assistant_only,
                system=options.system_prompt,
            )
            for e in examples
        ]

    train_data = [e for e in enc(train) if e.trained_tokens]
    val_data = [e for e in enc(validation) if e.trained_tokens]
    if not train_data:
        raise DatasetError(
            "no example has a token to learn within the context length",
            hint="raise --context-length or shorten the conversations",
        )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    torch.manual_seed(options.seed)
    layers = add_lora(model, options.target_modules, options.rank, options.alpha)
    params = [p for layer in layers.values() for p in (layer.lora_a, layer.lora_b)]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=0.0)
    per_epoch = math.ceil(len(train_data) / options.batch_size)
    total = per_epoch * options.epochs
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(options, total))
    fingerprint = _fingerprint(options, train_data, base_sha256)
    step = 0
    train_losses: list[float] = []
    val_losses: list[float] = []
    if not resume and checkpoint_dir is not None:
        clear_checkpoints(checkpoint_dir)  # a fresh run never resumes an older run's state later
    if resume and checkpoint_dir is not None and (last := latest_checkpoint(checkpoint_dir)):
        state = load_checkpoint(last, fingerprint)
        load_lora_state(layers, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, train_losses, val_losses = state["step"], state["losses"], state["val_losses"]

    def checkpoint() -> None:
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir,
                step,
                {
                    "fingerprint": fingerprint,
                    "lora": lora_state(layers),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "losses": train_losses,
                    "val_losses": val_losses,
                },
            )

    model.train()
    started, first_step = time.perf_counter(), step
    stopped = False
    try:
        while step < total:
            if stop is not None and stop.is_set():
                stopped = True
                break
            t0 = time.perf_counter()
            epoch, index = divmod(step, per_epoch)
            order = list(range(len(train_data)))
            random.Random(options.seed * 1000 + epoch).shuffle(order)
            chosen = [
                train_data[i] for i in order[index * options.batch_size :][: options.batch_size]
            ]
            n_tokens = sum(e.trained_tokens for e in chosen)
            optimizer.zero_grad()
            step_loss = 0.0
            for i in range(0, len(chosen), options.micro_batch_size):
                loss, _ = _batch_loss(model, chosen[i : i + options.micro_batch_size], pad_id)
                (loss / n_tokens).backward()
                step_loss += float(loss.detach()) / n_tokens
            optimizer.step()
            scheduler.step()
            step += 1
            train_losses.append(step_loss)
            report = StepReport(
                step, total, step_loss, float(scheduler.get_last_lr()[0]), time.perf_counter() - t0
            )
            periodic = options.checkpoint_every and step % options.checkpoint_every == 0
            if val_data and (periodic or step == total):
                model.eval()
                report.validation_loss = _mean_loss(
                    model, val_data, pad_id, options.micro_batch_size
                )
                model.train()
                val_losses.append(float(report.validation_loss or 0.0))
            if periodic:
                checkpoint()
            if on_step is not None:
                on_step(report)
    except KeyboardInterrupt:
        stopped = True
    finally:
        model.eval()
    if stopped:
        checkpoint()
    elapsed = time.perf_counter() - started
    if not stopped:
        write_adapter(
            layers,
            output,
            architecture=loaded.architecture,
            alpha=options.alpha,
            n_heads=loaded.n_heads,
            n_kv_heads=loaded.n_kv_heads,
            base_id=base_id,
            base_sha256=base_sha256,
            name=output.stem,
        )
    return FinetuneResult(
        adapter_path=output,
        steps=step,
        total_steps=total,
        train_losses=train_losses,
        validation_losses=val_losses,
        seconds_per_step=elapsed / max(1, step - first_step),
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        stopped_early=stopped,
        trained=loaded,
    )
