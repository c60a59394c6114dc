"""Agent task suite: how often the shipped models finish a task with a correct prose answer.

21 fixed tasks: arithmetic through calculator tools, facts read from files through the
published MCP filesystem server (@modelcontextprotocol/server-filesystem from npm),
multi-step lookups, and questions that need no tool. Every configuration sees the same
tools (4 calculator functions + 4 read-only filesystem tools), greedy decoding, seed 42:

- constrained: every step is a JSON-schema-constrained call (answers via final_answer);
- deferred: the model first sees only tool_search and loads tools by searching.

A task succeeds when the run ends with an answer that is prose (not a JSON call) and
contains every expected value. Not a test: it prints a table and writes JSON lines.

    npm install --prefix /tmp/fs @modelcontextprotocol/server-filesystem
    python bench/bench_agents.py --fs-server /tmp/fs/node_modules/.bin/mcp-server-filesystem \\
        [--models qwen2.5-coder-0.5b-instruct smollm2-135m-instruct] [--limit N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from terminus import Terminus
from terminus.agents import McpServer

FILES = {
    "capitals.txt": "Freedonia: Fredville\nSylvania: Marsh Town\nOstland: Kerr\n",
    "rivers.txt": "The Sylvan river is 412 km long.\nThe Oster river is 96 km long.\n",
    "prices.txt": "apples: 3 coins per kilo\npears: 5 coins per kilo\nplums: 7 coins per kilo\n",
    "people.txt": "Ada Lind is the mayor of Fredville.\nBo Strand runs the Kerr lighthouse.\n",
}


def tasks(folder: str) -> list[tuple[str, str, list[str]]]:
    """(kind, prompt, expected values)."""
    f = folder
    return [
        ("arithmetic", "What is 37 times 12?", ["444"]),
        ("arithmetic", "What is 1234 plus 5678?", ["6912"]),
        ("arithmetic", "What is 17.5 times 23?", ["402.5"]),
        ("arithmetic", "What is 1000 minus 387?", ["613"]),
        ("arithmetic", "What is 144 divided by 12?", ["12"]),
        ("arithmetic", "What is 2.5 times 8?", ["20"]),
        ("arithmetic", "What is 99 times 99?", ["9801"]),
        ("arithmetic", "What is 81 divided by 4?", ["20.25"]),
        ("file", f"Read the file {f}/capitals.txt. What is the capital of Ostland?", ["Kerr"]),
        (
            "file",
            f"Read the file {f}/capitals.txt. What is the capital of Sylvania?",
            ["Marsh Town"],
        ),
        ("file", f"Read the file {f}/rivers.txt. How long is the Oster river?", ["96"]),
        ("file", f"Read the file {f}/people.txt. Who is the mayor of Fredville?", ["Ada Lind"]),
        ("file", f"Read the file {f}/prices.txt. How much does a kilo of plums cost?", ["7"]),
        ("file", f"Read the file {f}/people.txt. Who runs the Kerr lighthouse?", ["Bo Strand"]),
        ("multi-step", "What is (12 + 30) times 3?", ["126"]),
        ("multi-step", "What is 100 minus 37, then divided by 3?", ["21"]),
        ("multi-step", f"Read {f}/prices.txt. How much do 4 kilos of pears cost?", ["20"]),
        (
            "multi-step",
            f"Read {f}/rivers.txt. What is the sum of the two rivers' lengths?",
            ["508"],
        ),
        ("no tool", "What is the capital of France?", ["Paris"]),
        ("no tool", "How do you say 'thank you' in Spanish?", ["gracias"]),
        ("no tool", "What is the opposite of hot?", ["cold"]),
    ]


def interleaved(suite: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """Kinds in turn, so a run stopped early still covers every kind."""
    groups: dict[str, list[tuple[str, str, list[str]]]] = {}
    for task in suite:
        groups.setdefault(task[0], []).append(task)
    out = []
    while any(groups.values()):
        for group in groups.values():
            if group:
                out.append(group.pop(0))
    return out


def add(a: float, b: float) -> float:
    """Add two numbers: a plus b, their sum."""
    return a + b


def subtract(a: float, b: float) -> float:
    """Subtract: a minus b, their difference."""
    return a - b


def multiply(a: float, b: float) -> float:
    """Multiply two numbers: a times b, their product."""
    return a * b


def divide(a: float, b: float) -> float:
    """Divide: a divided by b, their quotient."""
    return a / b


def _normalized(text: str) -> str:
    text = text.lower().replace(",", "")
    return re.sub(r"(\d+)\.0\b", r"\1", text)


def succeeded(text: str, stop_reason: str, expected: list[str]) -> bool:
    if stop_reason != "answer" or not text.strip() or text.lstrip().startswith(("{", "[")):
        return False
    answer = _normalized(text)
    return all(_normalized(value) in answer for value in expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--fs-server", default="mcp-server-filesystem", help="the mcp-server-filesystem command"
    )
    parser.add_argument(
        "--models", nargs="+", default=["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"]
    )
    parser.add_argument(
        "--configs", nargs="+", default=["plain", "constrained", "deferred", "constrained+deferred"]
    )
    parser.add_argument("--limit", type=int, help="only the first N tasks")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("TERMINUS_THREADS", "2")))
    parser.add_argument("--out", default="agents-bench.jsonl")
    parser.add_argument("--home", help="Terminus home [default: a temporary one]")
    parser.add_argument("--report", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    if args.report:
        print(report(args.out))
        return

    folder = tempfile.mkdtemp(prefix="agent-files-")
    for name, text in FILES.items():
        Path(folder, name).write_text(text)
    suite = interleaved(tasks(folder))[: args.limit]
    home = args.home or tempfile.mkdtemp(prefix="agent-bench-home-")
    fs_tools = ["read_text_file", "list_directory", "search_files", "get_file_info"]
    with Terminus(home=home, allow_download=False) as client, open(args.out, "a") as log:
        fs = McpServer([args.fs_server, folder], only=fs_tools).start()
        tools: list[Any] = [add, subtract, multiply, divide, fs]
        for model in args.models:
            client.load_model(model, context_length=8192, parallel=1, threads=args.threads)
            for kind, prompt, expected in suite:
                for config in args.configs:  # configs alternate, so drift hits all alike
                    t0 = time.perf_counter()
                    result = client.agent(
                        prompt,
                        model=model,
                        tools=tools,
                        constrained="constrained" in config,
                        deferred="deferred" in config,
                        temperature=0.0,
                        seed=42,
                    ).result()
                    ok = succeeded(result.text, result.stop_reason, expected)
                    row = {
                        "model": model,
                        "config": config,
                        "kind": kind,
                        "prompt": prompt,
                        "ok": ok,
                        "answer": result.text,
                        "stop": result.stop_reason,
                        "calls": [c.name for c in result.tool_calls],
                        "steps": result.steps,
                        "seconds": round(time.perf_counter() - t0, 1),
                        "load": round(os.getloadavg()[0], 1),
                    }
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    mark = "OK  " if ok else "--  "
                    print(
                        f"{mark}{model} {config} {prompt[-40:]!r} -> {result.text[:70]!r}",
                        flush=True,
                    )
            client.unload_model(model)
        fs.close()
    print(report(args.out))


def report(path: str) -> str:
    """The success table from a results file (also for a run stopped early)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        table.setdefault((r["model"], r["config"]), []).append(r)
    loads = [r.get("load", 0.0) for r in rows]
    lines = [
        f"load average {min(loads):.1f}-{max(loads):.1f}; greedy, seed 42",
        "",
        "| model | config | " + " | ".join(kinds) + " | all | median s/task |",
        "|---|---|" + "---|" * (len(kinds) + 2),
    ]
    for (model, config), group in table.items():
        cells = []
        for kind in kinds:
            hits = [r["ok"] for r in group if r["kind"] == kind]
            cells.append(f"{sum(hits)}/{len(hits)}")
        seconds = sorted(r["seconds"] for r in group)[len(group) // 2]
        total = sum(r["ok"] for r in group)
        lines.append(
            f"| {model} | {config} | "
            + " | ".join(cells)
            + f" | {total}/{len(group)} | {seconds} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
