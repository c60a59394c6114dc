"""Parity: lm-evaluation-harness's ``local-completions`` driving ``terminus serve`` scores
MedQA options as ``terminus eval`` does, item for item.

lm-eval side: its own evaluator (``simple_evaluate``) runs a local ``multiple_choice`` task
whose prompts are ``terminus eval``'s log-likelihood prompts for the same items (written
to a temporary JSONL with a task YAML), through ``local-completions`` against a
``terminus serve`` subprocess; it tokenizes through the server's ``/tokenize`` and
scores each option with ``echo`` + ``logprobs``. Terminus side: ``terminus eval``'s
scoring call (one forward pass per item, the next token's top 100, prompt computed
afresh) on the same model and threads, in this process.

Printed: per-option log-probability differences, the items where the two pick a
different option, and each side's accuracy. Timings are printed per side only: the two
protocols do different work (lm-eval runs one forward pass per option over every prompt
token's logits; Terminus one pass per item), so no ratio is drawn between them.

    python bench/bench_lmeval_parity.py [--items 20] [--model smollm2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "medbench" / "medqa_usmle_4opt_test.jsonl"
DATA = SHARED if SHARED.exists() else ROOT / "tests" / "data" / "medbench" / SHARED.name
TASK = "terminus_medqa_parity"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_task(folder: Path, rows: list[dict[str, Any]]) -> None:
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / f"{TASK}.yaml").write_text(
        "\n".join(
            [
                f"task: {TASK}",
                "dataset_path: json",
                "dataset_kwargs:",
                "  data_files:",
                f"    test: {json.dumps(str(data))}",
                "test_split: test",
                "output_type: multiple_choice",
                "doc_to_text: '{{prompt}}'",
                "doc_to_choice: '{{choices}}'",
                "doc_to_target: answer",
                "target_delimiter: ''",
                "metric_list:",
                "  - metric: acc",
                "",
            ]
        )
    )


def start_server(model: str, threads: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    import httpx

    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-lmeval-serve-", suffix=".log")[1])
    command = [sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port), "-m",
               model, "--threads", str(threads), "--parallel", "1", "--context-length", "2048"]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"terminus serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    sys.exit(f"terminus serve was not ready:\n{log.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--file", type=Path, default=DATA)
    args = parser.parse_args()
    print(f"bench_lmeval_parity: {load()}, {os.cpu_count()} CPUs, {args.file}", flush=True)

    from terminus import Terminus
    from terminus.eval.backends import ClientBackend
    from terminus.eval.loaders import items_from_records, read_records
    from terminus.eval.prompts import continuations, loglikelihood_prompt

    items = items_from_records(read_records(args.file), "medqa")[: args.items]
    rows = []
    for item in items:
        conts = continuations(item)
        rows.append(
            {
                "id": item.id,
                "prompt": loglikelihood_prompt("medqa", item),
                "choices": list(conts.values()),
                "keys": list(conts),
                "answer": list(conts).index(item.answer),
            }
        )

    process, url, log = start_server(args.model, args.threads)
    print(f"terminus serve -m {args.model} ready at {url}; {load()}", flush=True)
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager

        logging.getLogger("lm_eval").setLevel(logging.WARNING)
        folder = Path(tempfile.mkdtemp(prefix="bench-lmeval-task-"))
        write_task(folder, rows)
        started = time.perf_counter()
        results = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=f"model={args.model},base_url={url}/v1/completions,num_concurrent=1",
            tasks=[TASK],
            task_manager=TaskManager(include_path=str(folder)),
            log_samples=True,
        )
        lm_seconds = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert results is not None
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    lm_scores = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    print(f"lm-eval: {len(samples)} items in {lm_seconds:.1f} s; {load()}", flush=True)

    client = Terminus(allow_download=False)
    client.load_model(args.model, parallel=1, threads=args.threads, context_length=2048)
    backend = ClientBackend(client, args.model, parallel=1)
    started = time.perf_counter()
    ours = [backend.next_token(row["prompt"], 100).top for row in rows]
    our_seconds = time.perf_counter() - started
    client.close()
    print(f"terminus eval scoring: {len(rows)} items in {our_seconds:.1f} s; {load()}")

    diffs: list[float] = []
    disagree = outside = lm_right = our_right = 0
    for row, lm, top in zip(rows, lm_scores, ours, strict=True):
        lm_pick = max(range(len(lm)), key=lambda i: lm[i])
        lm_right += lm_pick == row["answer"]
        inside = {i: top[c] for i, c in enumerate(row["choices"]) if c in top}
        outside += len(row["choices"]) - len(inside)
        diffs.extend(abs(lm[i] - value) for i, value in inside.items())
        our_pick = max(inside, key=lambda i: inside[i]) if inside else None
        our_right += our_pick == row["answer"]
        if our_pick != lm_pick:
            disagree += 1
            print(f"  {row['id']}: lm-eval picks {row['keys'][lm_pick]}, terminus eval "
                  f"{None if our_pick is None else row['keys'][our_pick]}")  # fmt: skip
    n = len(rows)
    print(
        f"\n{args.model}, {n} MedQA items, {len(diffs)} options compared "
        f"({outside} outside Terminus's top 100)\n"
        f"  |log-prob difference| per option: max {max(diffs):.2e}, "
        f"mean {sum(diffs) / len(diffs):.2e} nats\n"
        f"  items where the chosen option differs: {disagree} of {n}\n"
        f"  accuracy: lm-eval {lm_right}/{n} ({results['results'][TASK]['acc,none']:.3f}), "
        f"terminus eval {our_right}/{n}\n"
        f"  end: {load()}; serve log {log}"
    )


if __name__ == "__main__":
    main()
