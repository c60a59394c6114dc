"""Second-call time to first token: ``terminus run`` answered by a resident server's warm
model vs today's in-process run (which loads the model again), vs raw xllamacpp in a fresh
process (load + first token: the floor of any reload), in one run.

Each sample is a new process, as a user typing the command again: the time is from
spawning it to the first byte of the answer on its stdout. Sides rotate (server,
in-process, raw; each round starts one later) so drift on a shared machine hits all
alike; same GGUF, threads, context, slots, prompt and sampling everywhere (the card's,
greedy). Prints medians, ratios
and the load average. Not a test: nothing here asserts timings.

    python bench/bench_resident.py [--rounds 5] [--threads 1] [--tokens 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "What is the capital of France?"
SYSTEM = "You are a helpful assistant."

RAW = """
import sys, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.n_ctx = {context} * 2
params.n_parallel = 2
params.cpuparams.n_threads = {threads}
params.cpuparams_batch.n_threads = {threads}
params.verbosity = -1
params.use_jinja = True
server = xllamacpp.Server(params)
body = {{"messages": [{{"role": "system", "content": {system!r}}},
                      {{"role": "user", "content": {prompt!r}}}],
        "max_tokens": {tokens}, "stream": True, "temperature": 0, "seed": 1,
        "top_p": {top_p!r}, "repeat_penalty": {repeat_penalty!r}}}
def on_chunk(chunk):
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {{}}).get("content")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
    return False
server.handle_chat_completions(body, on_chunk)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_byte(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(seconds to the first stdout byte, seconds to exit, CPU seconds, stdout) of a new
    process (its own CPU: a server's work for it is not counted)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        first = process.stdout.read(1)
        ttft = time.perf_counter() - start
        rest = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        total = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0 or not first:
            errors.seek(0)
            raise RuntimeError(f"{command[:4]} failed: {errors.read().decode()[-2000:]}")
    return ttft, total, usage.ru_utime + usage.ru_stime, (first + rest).decode(errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--model", default="smollm2", help="a chat model card (smollm2, qwen)")
    args = parser.parse_args()
    print("bench_resident: load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)

    home = Path(tempfile.mkdtemp(prefix="bench-resident-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules load from their .pyc
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_THREADS=str(args.threads))
    cli = [sys.executable, "-m", "terminus.cli.main"]
    common = [
        "--model",
        args.model,
        "--temperature",
        "0",
        "--seed",
        "1",
        "--max-tokens",
        str(args.tokens),
    ]
    common += ["--context-length", str(args.context), "--system", SYSTEM]
    run = [*cli, "run", *common, PROMPT]
    local = [*cli, "--no-server", "run", *common, PROMPT]
    try:
        first_byte(local, env)  # imports the model into the cache: not timed
        from terminus import Terminus

        with Terminus(home=home, allow_download=False) as client:
            card = client.models.get(args.model)
            gguf = client.manager.ensure_files(card).main
        # The card's sampling, as `terminus run` sends it (temperature and seed overridden).
        raw = [sys.executable, "-c", RAW.format(
            context=args.context, threads=args.threads, tokens=args.tokens,
            system=SYSTEM, prompt=PROMPT, top_p=card.defaults.get("top_p", 1.0),
            repeat_penalty=card.defaults.get("repeat_penalty", 1.0),
        ), str(gguf)]  # fmt: skip
        port = free_port()
        subprocess.run(
            [*cli, "serve", "--detach", "--port", str(port), "--model", args.model,
             "--threads", str(args.threads), "--context-length", str(args.context),
             "--parallel", "2", "--keep-alive", "-1"],
            env=env, check=True,
        )  # fmt: skip
        first_byte(run, env)  # the first call through the server: not timed
        samples: dict[str, list[tuple[float, float, float]]] = {
            "server": [],
            "in-process": [],
            "raw": [],
        }
        answers: dict[str, str] = {}
        load_before = os.getloadavg()
        sides = [("server", run), ("in-process", local), ("raw", raw)]
        for i in range(args.rounds):
            order = sides[i % 3 :] + sides[: i % 3]  # rotate who goes first
            for side, command in order:
                ttft, total, cpu, text = first_byte(command, env)
                samples[side].append((ttft, total, cpu))
                answers[side] = text.strip()
            print(
                f"  round {i + 1} ({order[0][0]} first)  first token "
                + "  ".join(f"{side} {samples[side][-1][0]:.2f} s" for side, _ in sides)
                + "  load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
                flush=True,
            )
        load_after = os.getloadavg()
    finally:
        subprocess.run([*cli, "serve", "--stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)

    print(
        f"{args.model}: rounds {args.rounds}, threads {args.threads}, {args.tokens} tokens, greedy"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    medians = {
        side: tuple(statistics.median(sample[i] for sample in s) for i in range(3))
        for side, s in samples.items()
    }
    print(f"{'side':<12} {'first token':>12} {'whole run':>12} {'process CPU':>12}  (medians)")
    for side, (ttft, total, cpu) in medians.items():
        print(f"{side:<12} {ttft:>10.2f} s {total:>10.2f} s {cpu:>10.2f} s")
    server, local_ttft, raw_ttft = medians["server"][0], medians["in-process"][0], medians["raw"][0]
    print(f"in-process / server first token: {local_ttft / server:.2f}x")
    print(f"raw reload / server first token: {raw_ttft / server:.2f}x")
    same = answers["server"] == answers["in-process"] == answers["raw"]
    print(f"server, in-process and raw answers identical: {same}")


if __name__ == "__main__":
    main()
