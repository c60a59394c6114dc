"""Running benchmarks: deterministic subset, several items in flight, resumable."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from terminus.errors import InvalidParameterError
from terminus.eval.backends import EvalBackend
from terminus.eval.datasets import LoadedBenchmark
from terminus.eval.extract import extract_answer, thinking_of
from terminus.eval.items import McqItem, sample
from terminus.eval.prompts import (
    DEFAULT_TOP_LOGPROBS,
    GENERATIVE_SYSTEM,
    PROMPT_VERSION,
    continuations,
    generative_messages,
    loglikelihood_text,
)
from terminus.eval.protocols import check_template, rotations, split_fewshot, template_version
from terminus.eval.provenance import software
from terminus.eval.store import ResultStore, config_key
from terminus.eval.thinking import generate_with_budget

Mode = Literal["generative", "loglikelihood"]
RUN_FILE = "run.json"
_KEEP_RESPONSE = 4000  # characters of each answer kept for reading later


@dataclass(frozen=True)
class RunConfig:
    benchmarks: tuple[str, ...]
    mode: Mode = "loglikelihood"
    limit: int | None = None
    seed: int = 0
    max_tokens: int = 512
    temperature: float = 0.0
    top_logprobs: int = DEFAULT_TOP_LOGPROBS
    prompt_version: str = PROMPT_VERSION
    #: Examples held out of each file and answered before every item (``protocols``).
    fewshot: int = 0
    #: A prompt template replacing the built-in wording; names its own prompt version.
    template: str | None = None
    #: CircularEval: an item counts only if right under every rotation of its options.
    circular: bool = False
    #: Answers sampled per item (generative, temperature > 0), seeds ``seed … seed + k − 1``.
    samples: int = 1
    #: Generative: reasoning capped at this many tokens, then the answer (``eval.thinking``).
    thinking_budget: int | None = None

    def __post_init__(self) -> None:
        if self.template is not None:
            check_template(self.template)
            if self.prompt_version == PROMPT_VERSION:
                object.__setattr__(self, "prompt_version", template_version(self.template))
        if self.fewshot < 0:
            raise InvalidParameterError("fewshot must be 0 or more")
        if self.samples < 1:
            raise InvalidParameterError("samples must be at least 1")
        if self.samples > 1 and (self.mode != "generative" or self.temperature <= 0):
            raise InvalidParameterError(
                "several samples need --mode generative and a temperature above 0"
            )
        if self.samples > 1 and self.circular:
            raise InvalidParameterError("use either samples or circular, not both")
        if self.mode not in ("generative", "loglikelihood"):
            raise InvalidParameterError(
                f"mode must be generative or loglikelihood, not {self.mode!r}"
            )
        if self.thinking_budget is not None and (
            self.thinking_budget < 1 or self.mode != "generative"
        ):
            raise InvalidParameterError("a thinking budget is 1 token or more, in generative mode")
        if self.limit is not None and self.limit < 1:
            raise InvalidParameterError("limit must be at least 1")
        if not self.benchmarks:
            raise InvalidParameterError("name at least one benchmark")

    def item_key(self, model: Mapping[str, Any]) -> dict[str, Any]:
        """What an item's result depends on (not which benchmarks or how many are run)."""
        fields = asdict(self)
        fields.pop("benchmarks")
        fields.pop("limit")
        if self.mode == "loglikelihood":
            fields.pop("max_tokens")
            fields.pop("temperature")
        else:
            fields.pop("top_logprobs")
        return {**fields, "model": dict(model)}


def score_item(
    backend: EvalBackend,
    benchmark: str,
    item: McqItem,
    config: RunConfig,
    shots: Sequence[McqItem] = (),
) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": benchmark,
        "id": item.id,
        "answer": item.answer,
        "options": len(item.options),
    }
    if config.circular:
        asked = [
            (_score_once(backend, benchmark, rotated, config, shots, config.seed), back)
            for rotated, back in rotations(item)
        ]
        result.update(asked[0][0])  # the first rotation is the options as published
        result["predicted"] = asked[0][1].get(asked[0][0]["predicted"] or "")
        result["rotations"] = [back.get(one["predicted"] or "") for one, back in asked]
        result["correct_first_rotation"] = result["predicted"] == item.answer
        result["correct"] = all(p == item.answer for p in result["rotations"])
        for field in ("prompt_tokens", "completion_tokens"):
            result[field] = sum(int(one.get(field, 0)) for one, _ in asked)
    elif config.samples > 1:
        answers = [
            _score_once(backend, benchmark, item, config, shots, config.seed + j)
            for j in range(config.samples)
        ]
        result.update(answers[0])
        result["samples"] = [one["predicted"] for one in answers]
        result["sample_correct"] = [one["predicted"] == item.answer for one in answers]
        result["correct"] = result["sample_correct"][0]
        for field in ("prompt_tokens", "completion_tokens"):
            result[field] = sum(int(one.get(field, 0)) for one in answers)
    else:
        result.update(_score_once(backend, benchmark, item, config, shots, config.seed))
        result["correct"] = result["predicted"] == item.answer
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


def _score_once(
    backend: EvalBackend,
    benchmark: str,
    item: McqItem,
    config: RunConfig,
    shots: Sequence[McqItem],
    seed: int,
) -> dict[str, Any]:
    if config.mode == "loglikelihood":
        prompt = loglikelihood_text(benchmark, item, shots, config.template)
        return _loglikelihood(backend, prompt, item, config.top_logprobs)
    messages = generative_messages(item, shots, config.template)
    budgeted: dict[str, Any] = {}
    if config.thinking_budget is not None:
        run = generate_with_budget(
            backend,
            messages,
            budget=config.thinking_budget,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            seed=seed,
        )
        out = run.generation
        budgeted = {"thinking_truncated": run.truncated, "thinking_tokens": run.thinking_tokens}
    else:
        out = backend.generate(
            messages, max_tokens=config.max_tokens, temperature=config.temperature, seed=seed
        )
    predicted = extract_answer(out.text, item.options)
    thinking = out.thinking or thinking_of(out.text)
    return {
        **budgeted,
        "predicted": predicted,
        "parsed": predicted is not None,
        "response": out.text[:_KEEP_RESPONSE],
        # Kept apart from the answer: extraction never reads it, a reader may.
        "thinking": thinking[:_KEEP_RESPONSE],
        "prompt_tokens": out.prompt_tokens,
        "completion_tokens": out.completion_tokens,
    }


def _loglikelihood(backend: EvalBackend, prompt: str, item: McqItem, top: int) -> dict[str, Any]:
    """lm-eval's ``acc`` / ``acc_norm`` over single-token continuations.

    An option outside the top-k alternatives has a lower log-probability than every
    option inside it, so the argmax (``acc``) is exact whenever one option is inside.
    """
    nxt = backend.next_token(prompt, top)
    conts = continuations(item)
    scores = {key: nxt.top[text] for key, text in conts.items() if text in nxt.top}
    predicted = max(scores, key=lambda k: scores[k]) if scores else None
    normed = {k: v / len(conts[k].encode()) for k, v in scores.items()}
    predicted_norm = max(normed, key=lambda k: normed[k]) if normed else None
    return {
        "predicted": predicted,
        "parsed": predicted is not None,
        "logprobs": {k: round(v, 6) for k, v in scores.items()},
        "outside_top_k": len(conts) - len(scores),
        "correct_norm": predicted_norm == item.answer,
        "prompt_tokens": nxt.prompt_tokens,
        "completion_tokens": 0,
    }


def run_eval(
    backend: EvalBackend,
    config: RunConfig,
    data: Mapping[str, LoadedBenchmark],
    run_dir: Path,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every chosen item not already stored for this configuration; returns run.json."""
    model = backend.describe()
    # Parallelism is part of the key: batched prompt processing moves log-probabilities.
    key = config_key({**config.item_key(model), "parallel": backend.parallel})
    store = ResultStore(run_dir, key)
    stored = store.done()
    shots: dict[str, list[McqItem]] = {}
    chosen: dict[str, list[McqItem]] = {}
    for name in config.benchmarks:
        shots[name], scorable = split_fewshot(data[name].items, config.fewshot, config.seed)
        chosen[name] = sample(scorable, config.limit, config.seed)
    total = sum(len(items) for items in chosen.values())
    bar = progress_bar(total, progress)
    walls: dict[str, float] = {}
    try:
        for name, items in chosen.items():
            pending = [item for item in items if (name, item.id) not in stored]
            bar.update(len(items) - len(pending))
            bar.set_description(name)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=max(1, backend.parallel)) as pool:
                futures = [
                    pool.submit(score_item, backend, name, item, config, shots[name])
                    for item in pending
                ]
                for future in futures:
                    store.append(future.result())
                    bar.update(1)
            walls[name] = round(time.perf_counter() - started, 3)
    finally:
        bar.close()
    meta = {
        "config": asdict(config),
        "key": key,
        "model": model,
        "label": backend.label,
        "parallel": backend.parallel,
        "software": software(),
        "prompt": prompt_record(config, chosen, shots),
        "decoding": decoding_record(config),
        "data": {
            name: {
                "source": data[name].source,
                "sha256": data[name].sha256,
                "items_in_file": len(data[name].items),
                "item_ids": [item.id for item in chosen[name]],
                "fewshot_ids": [item.id for item in shots[name]],
            }
            for name in config.benchmarks
        },
        "wall_seconds": walls,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(run_dir / RUN_FILE, meta)
    return meta


def decoding_record(config: RunConfig) -> dict[str, Any]:
    """The sampling settings as sent, spelled out for the report."""
    if config.mode == "loglikelihood":
        return {
            "kind": "next-token log-probabilities",
            "max_tokens": 1,
            "top_logprobs": config.top_logprobs,
            "cache_prompt": False,
        }
    return {
        "kind": "greedy" if config.temperature == 0 else "sampled",
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "repeat_penalty": 1.0,
        "seed": config.seed,
        "cache_prompt": False,
    }


def prompt_record(
    config: RunConfig,
    chosen: Mapping[str, list[McqItem]],
    shots: Mapping[str, list[McqItem]],
) -> dict[str, Any]:
    """The prompt version, the system text, and the first scored item's prompt per benchmark
    exactly as sent, so a reader sees the wording without rerunning anything."""
    examples: dict[str, str] = {}
    for name, items in chosen.items():
        if not items:
            continue
        if config.mode == "loglikelihood":
            examples[name] = loglikelihood_text(name, items[0], shots[name], config.template)
        else:
            messages = generative_messages(items[0], shots[name], config.template)
            examples[name] = "\n\n".join(f"[{m['role']}] {m['content']}" for m in messages[1:])
    record: dict[str, Any] = {
        "version": config.prompt_version,
        "first_item": examples,
        "template": config.template,
        "fewshot": config.fewshot,
        "circular": config.circular,
        "samples": config.samples,
        "thinking_budget": config.thinking_budget,
    }
    if config.mode == "generative":
        record["system"] = GENERATIVE_SYSTEM
    return record


def progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="item", disable=not enabled, dynamic_ncols=True, leave=True)


def write_json(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)
