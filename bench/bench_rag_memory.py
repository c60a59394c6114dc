"""Peak memory of `terminus rag ingest` on one large text file (not a test).

Writes a text file of ``--mb`` megabytes (English-like sentences in paragraphs,
deterministic), then runs ``terminus rag ingest ws big.txt`` in a fresh process per run
and reads that process's peak RSS from ``wait4``. Each run gets a fresh Terminus home.

Runs alternate between the source trees given with ``--tree`` (for instance this
checkout and an older one), so the ratio compares identical inputs and settings:

    python bench/bench_rag_memory.py --mb 50 --model fake --tree src --tree /old/src
    python bench/bench_rag_memory.py --mb 50 --style lines --tree src --tree /old/src
    python bench/bench_rag_memory.py --mb 2 --model all-minilm-l6-v2 --tree src

``--model fake`` is the scripted test engine (a hashed bag of words, 384 dims): it
measures the pipeline (reading, chunking, batching, writing) without the embedding
model's own time. ``all-minilm-l6-v2`` is the real default model (numpy MiniLM); on one
core it embeds about 5,000 tokens/s, so 50 MB (≈12 M tokens) takes hours on a busy
machine: ``--time-limit`` stops it after the reading, chunking, document write and
the first batches, which is where the peak is reached (the text is held from then on).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "model",
    "reads",
    "each",
    "document",
    "and",
    "splits",
    "it",
    "into",
    "chunks",
    "of",
    "words",
    "that",
    "fit",
    "the",
    "embedding",
    "window",
    "while",
    "sentences",
    "stay",
    "whole",
    "where",
    "they",
    "can",
    "patients",
    "doctors",
    "measured",
    "results",
    "within",
    "trials",
    "showed",
    "lower",
    "pressure",
    "after",
    "treatment",
    "and",
    "the",
    "study",
    "followed",
    "every",
    "group",
    "for",
    "twelve",
    "weeks",
    "before",
    "the",
    "final",
    "analysis",
    "was",
    "done",
]

FAKE_CARD = """id = "fake-embed-384"
capability = "embed"
engine = "fake"
format = "fake"
[[files]]
name = "weights.bin"
sha256 = "{sha}"
size = {size}
[[sources]]
type = "local"
paths = {{ "weights.bin" = "{path}" }}
[defaults]
dimensions = 384
"""


def make_text(path: Path, megabytes: float, style: str, seed: int = 3) -> int:
    """``prose``: sentences in paragraphs. ``lines``: log-like lines with no sentence
    punctuation and no blank line (one endless "sentence", cut into word windows)."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < target:
            if style == "lines":
                block = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))) + "\n"
            else:
                sentences = []
                for _ in range(rng.randint(3, 8)):
                    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 24))]
                    sentences.append(" ".join(words).capitalize() + ".")
                block = " ".join(sentences) + "\n\n"
            fh.write(block)
            written += len(block)
    return written


def fake_model(home: Path) -> None:
    payload = b"fake embedding weights\n" * 8
    weights = home / "fake-weights.bin"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(payload)
    cards = home / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    (cards / "fake-embed-384.toml").write_text(
        FAKE_CARD.format(
            sha=hashlib.sha256(payload).hexdigest(), size=len(payload), path=str(weights)
        )
    )


def _peak_so_far(pid: int) -> float:
    """The process's peak RSS (VmHWM) in MB, read while it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_ingest(
    tree: str, text: Path, model: str, scratch: Path, time_limit: float | None = None
) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, last output line) of one ingest in a fresh process.

    With ``time_limit`` the ingest is stopped (SIGTERM) after that many seconds and the
    peak is the one reached so far (its transaction is rolled back: nothing is written).
    """
    home = Path(tempfile.mkdtemp(dir=scratch))
    if model == "fake":
        fake_model(home)
        model = "fake-embed-384"
    env = dict(os.environ, TERMINUS_HOME=str(home), PYTHONPATH=str(Path(tree).resolve()))
    env.setdefault("TERMINUS_THREADS", "1")
    args = [sys.executable, "-m", "terminus.cli.main"]
    args += ["rag", "ingest", "ws", str(text), "--model", model]
    started = time.perf_counter()
    logs = scratch / f"out-{os.getpid()}-{time.monotonic_ns()}.txt"
    with logs.open("w+b") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=sink)
        stopped_peak = 0.0
        if time_limit is not None:
            while proc.poll() is None and time.perf_counter() - started < time_limit:
                stopped_peak = max(stopped_peak, _peak_so_far(proc.pid))
                time.sleep(0.5)
            if proc.poll() is None:
                stopped_peak = max(stopped_peak, _peak_so_far(proc.pid))
                proc.terminate()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        sink.seek(0)
        out = err = sink.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stopped_peak and proc.returncode != 0:
        return max(stopped_peak, usage.ru_maxrss / 1024), elapsed, "stopped at the time limit"
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed with {tree} (rc {proc.returncode}):\n{out}\n{err}")
    return usage.ru_maxrss / 1024, elapsed, (out.strip().splitlines() or [""])[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the text file (MB)")
    parser.add_argument("--model", default="fake", help="fake or an embedding model id")
    parser.add_argument("--tree", action="append", help="a source tree (PYTHONPATH); repeat")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--style", choices=("prose", "lines"), default="prose")
    parser.add_argument("--time-limit", type=float, help="stop each ingest after this many seconds")
    opts = parser.parse_args()
    trees = opts.tree or ["src"]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        text = scratch / "big.txt"
        size = make_text(text, opts.mb, opts.style)
        print(
            f"file: {size / 1e6:.1f} MB of {opts.style}, model {opts.model},"
            f" load {os.getloadavg()[0]:.2f}"
        )
        peaks: dict[str, list[float]] = {t: [] for t in trees}
        for round_ in range(opts.rounds):
            order = trees if round_ % 2 == 0 else list(reversed(trees))
            for tree in order:
                peak, seconds, line = run_ingest(tree, text, opts.model, scratch, opts.time_limit)
                peaks[tree].append(peak)
                print(f"{tree}: peak RSS {peak:.0f} MB, {seconds:.1f} s  ({line})")
        first = trees[0]
        for tree in trees[1:]:
            ratio = max(peaks[first]) / max(peaks[tree])
            print(f"peak RSS {first} / {tree}: {ratio:.2f}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
