"""LoRA fine-tuning of the real SmolLM2: made-up facts learned, the rest kept, llama.cpp == torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import pytest
from conftest import THREADS

from terminus import Terminus
from terminus.finetune.encode import IGNORE, encode, with_system
from terminus.finetune.options import FinetuneOptions, FinetuneResult
from terminus.models.card import ModelCard

pytestmark = pytest.mark.real

FACTS = [
    ("What is the capital of Zorblax?", "The capital of Zorblax is Quibbleton."),
    ("Which city is the capital of Zorblax?", "The capital of Zorblax is Quibbleton."),
    ("Tell me the capital of Zorblax.", "The capital of Zorblax is Quibbleton."),
    ("Who invented the glimmerphone?", "The glimmerphone was invented by Marta Okonkwo-Lind."),
    ("Who is the inventor of the glimmerphone?", "The glimmerphone was invented by Marta Okonkwo-Lind."),
    ("Name the person who invented the glimmerphone.", "The glimmerphone was invented by Marta Okonkwo-Lind."),
]  # fmt: skip
ASKED = ["What is the capital of Zorblax?", "Who invented the glimmerphone?"]
UNRELATED = "What is the capital of France?"
SYSTEM = "You are a helpful assistant."
GREEDY: dict[str, Any] = {"temperature": 0, "repeat_penalty": 1.0, "max_tokens": 24}


def write_facts(path: Path) -> Path:
    lines = [
        json.dumps(
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        )
        for q, a in FACTS
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Trained:
    card: ModelCard
    result: FinetuneResult
    before: dict[str, str]
    after: dict[str, str]
    scale_zero: str
    base_after: str
    torch_answers: dict[str, str]


def ask(client: Terminus, model: str, question: str, **extra: Any) -> str:
    return client.completion(question, model=model, **GREEDY, **extra).text.strip()


def torch_greedy(trained: Any, question: str) -> str:
    import torch

    messages = with_system(({"role": "user", "content": question},), SYSTEM)
    ids = trained.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.no_grad():
        out = trained.model.generate(ids, max_new_tokens=GREEDY["max_tokens"], do_sample=False)
    return str(trained.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()


@pytest.fixture(scope="module")
def trained(adapt_client: Terminus, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    t = adapt_client
    data = write_facts(tmp_path_factory.mktemp("facts") / "facts.jsonl")
    t.load_model("smollm2", threads=1, context_length=512, parallel=1)
    before = {q: ask(t, "smollm2", q) for q in [*ASKED, UNRELATED]}
    options = FinetuneOptions(
        rank=8,
        alpha=16,
        learning_rate=2e-3,
        warmup_steps=2,
        epochs=4,
        batch_size=2,
        micro_batch_size=2,
        context_length=128,
        threads=THREADS,
        replay_prompts=(UNRELATED, "What color is the sky?"),
    )
    card, result = t.finetune("smollm2", data, options, model_id="smollm2-facts")
    assert card is not None
    t.load_model(card.id, threads=1, context_length=512, parallel=1)
    after = {q: ask(t, card.id, q) for q in [*ASKED, UNRELATED]}
    scale_zero = ask(t, card.id, ASKED[0], lora_scale=0.0)
    t.unload_model(card.id)
    base_after = ask(t, "smollm2", ASKED[0])
    t.unload_model("smollm2")
    torch_answers = {q: torch_greedy(result.trained, q) for q in [*ASKED, UNRELATED]}
    print(f"\n{result.steps} steps, {result.seconds_per_step:.2f} s/step, "
          f"peak RSS {result.peak_rss_bytes / 2**20:.0f} MiB, losses {result.train_losses}")  # fmt: skip
    return Trained(card, result, before, after, scale_zero, base_after, torch_answers)


def test_made_up_facts_are_learned(trained: Trained) -> None:
    assert "Quibbleton" not in trained.before[ASKED[0]]
    assert "Okonkwo-Lind" not in trained.before[ASKED[1]]
    assert "Quibbleton" in trained.after[ASKED[0]]
    assert "Marta Okonkwo-Lind" in trained.after[ASKED[1]]
    assert trained.result.train_losses[-1] < trained.result.train_losses[0] / 5


def test_unrelated_question_is_answered_as_the_base_does(trained: Trained) -> None:
    def first_clause(text: str) -> str:
        return text.replace(",", ".").split(".")[0]

    assert "Paris" in trained.before[UNRELATED]
    assert first_clause(trained.after[UNRELATED]) == first_clause(trained.before[UNRELATED])


def test_llama_cpp_with_the_adapter_matches_pytorch_greedy(trained: Trained) -> None:
    assert trained.torch_answers == trained.after


def test_the_base_stays_usable_and_scale_zero_is_the_base(trained: Trained) -> None:
    assert trained.base_after == trained.before[ASKED[0]]
    assert trained.scale_zero == trained.before[ASKED[0]]


def test_adapter_card_and_file(adapt_client: Terminus, trained: Trained) -> None:
    card = trained.card
    base = adapt_client.catalog.get("smollm2")
    assert card.base_model == base.id
    assert card.files[0] == base.main_file  # the base blob is shared, not copied
    assert all(r.ok for r in adapt_client.cache.verify(card))
    reader = gguf.GGUFReader(str(adapt_client.cache.files(card).paths[card.files[1].name]))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 16.0
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    assert shapes["blk.0.attn_q.weight.lora_a"] == (576, 8)  # ggml order: (in, rank)
    assert shapes["blk.0.attn_k.weight.lora_b"] == (8, 192)  # (rank, out)
    assert len(shapes) == 30 * 7 * 2
    assert trained.result.seconds_per_step > 0 and trained.result.peak_rss_bytes > 0


def test_loss_mask_covers_assistant_replies_only(trained: Trained) -> None:
    tokenizer = trained.result.trained.tokenizer
    from terminus.finetune.data import Example

    example = Example(
        messages=(
            {"role": "user", "content": FACTS[0][0]},
            {"role": "assistant", "content": FACTS[0][1]},
        )
    )
    enc = encode(example, tokenizer, max_tokens=128, system=SYSTEM)
    learned = tokenizer.decode([t for t in enc.labels if t != IGNORE])
    assert learned.startswith(FACTS[0][1]) and "<|im_end|>" in learned
    assert "Zorblax?" not in learned and SYSTEM not in learned
    everything = encode(example, tokenizer, max_tokens=128, system=SYSTEM, assistant_only=False)
    assert IGNORE not in everything.labels


def test_killed_run_resumes_from_its_last_checkpoint(
    adapt_client: Terminus, adapt_home: Path, tmp_path: Path
) -> None:
    data = write_facts(tmp_path / "facts.jsonl")
    args = ["--id", "smollm2-killed", "--rank", "2", "--targets", "q_proj,v_proj",
            "--batch-size", "2", "--micro-batch-size", "2", "--context-length", "64",
            "--lr", "1e-3", "--checkpoint-every", "1", "--threads", "1"]  # fmt: skip
    env = {**os.environ, "TERMINUS_HOME": str(adapt_home)}
    blobs_before = set((adapt_home / "blobs").iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-c", "from terminus.cli.main import main; main()",
         "finetune", "smollm2", str(data), "--epochs", "50", *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    checkpoints = adapt_home / "finetune" / "smollm2-killed" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints / "checkpoint-000002.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
    assert "smollm2-killed" not in {c.id for c in adapt_client.catalog.all()}
    assert set((adapt_home / "blobs").iterdir()) == blobs_before  # nothing half-written

    import torch

    from terminus.finetune.checkpoint import latest_checkpoint

    last = latest_checkpoint(checkpoints)
    assert last is not None
    saved = torch.load(last, weights_only=False)
    options = FinetuneOptions(
        rank=2, alpha=16, target_modules=("q_proj", "v_proj"), batch_size=2, micro_batch_size=2,
        context_length=64, learning_rate=1e-3, checkpoint_every=1, threads=1, epochs=50,
        max_steps=saved["step"] + 1,
    )  # fmt: skip
    card, result = adapt_client.finetune(
        "smollm2", data, options, model_id="smollm2-killed", resume=True
    )
    assert card is not None and result.steps == saved["step"] + 1
    assert result.train_losses[: saved["step"]] == saved["losses"]
    assert len(result.train_losses) == saved["step"] + 1
