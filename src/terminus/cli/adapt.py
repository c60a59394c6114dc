"""``terminus finetune``, ``terminus quantize`` and ``terminus compare``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from terminus.cli.context import CliState, pass_state

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _read_text(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}") from exc


@click.command()
@click.argument("base", metavar="BASE")
@click.argument("dataset", type=click.Path(dir_okay=False), metavar="DATASET.jsonl")
@click.option("--id", "model_id", metavar="ID", help="Id of the new model [default BASE-lora].")
@click.option(
    "--validation",
    type=click.Path(exists=True, dir_okay=False),
    help="A separate validation JSONL (else --val-fraction of DATASET).",
)
@click.option("--val-fraction", default=0.0, show_default=True, help="Share held out.")
@click.option(
    "--train-on",
    type=click.Choice(["assistant", "all"]),
    default="assistant",
    show_default=True,
    help="Loss on assistant replies only, or on every token.",
)
@click.option("--rank", default=8, show_default=True, help="LoRA rank.")
@click.option("--alpha", default=16.0, show_default=True, help="LoRA alpha (scale alpha/rank).")
@click.option(
    "--targets",
    default=",".join(TARGETS),
    show_default=True,
    help="Comma-separated modules that get LoRA layers.",
)
@click.option("--lr", "learning_rate", default=1e-3, show_default=True, help="Peak learning rate.")
@click.option("--warmup", "warmup_steps", default=0, show_default=True, help="Warm-up steps.")
@click.option(
    "--scheduler",
    type=click.Choice(["cosine", "linear", "constant"]),
    default="cosine",
    show_default=True,
)
@click.option("--epochs", default=1, show_default=True)
@click.option("--batch-size", default=4, show_default=True, help="Examples per optimizer step.")
@click.option("--micro-batch-size", default=1, show_default=True, help="Examples per forward pass.")
@click.option("--context-length", default=256, show_default=True, help="Tokens per example.")
@click.option("--max-steps", type=int, help="Stop after this many steps.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--checkpoint-every", default=0, show_default=True, help="Save a checkpoint every N steps."
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of this --id.")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False),
    help="General prompts (one a line) whose base-model answers are mixed in against forgetting.",
)
@click.option("--threads", type=int, help="torch threads [default: torch's choice].")
@pass_state
def finetune(state: CliState, base: str, dataset: str, **kw: Any) -> None:
    """Train a LoRA adapter on BASE from DATASET and add it as a new model.

    DATASET is JSONL: one {"messages": [{"role": ..., "content": ...}, ...]} or
    {"text": ...} per line. The adapter (GGUF) goes into the cache with a card
    naming BASE; `terminus run -m ID` then runs BASE with the adapter. Ctrl-C
    saves a checkpoint; --resume continues from it. Needs torch
    (pip install torch==2.13.0 && pip install 'terminus[train]').

    \b
    Example:
      terminus finetune smollm2 facts.jsonl --id smollm2-facts --epochs 4 --lr 2e-3
    """
    from terminus.finetune.options import FinetuneOptions

    replay = kw.pop("replay")
    prompts = (
        tuple(p.strip() for p in _read_text(replay).splitlines() if p.strip()) if replay else ()
    )
    options = FinetuneOptions(
        rank=kw["rank"],
        alpha=kw["alpha"],
        target_modules=tuple(t.strip() for t in kw["targets"].split(",") if t.strip()),
        learning_rate=kw["learning_rate"],
        warmup_steps=kw["warmup_steps"],
        scheduler=kw["scheduler"],
        epochs=kw["epochs"],
        batch_size=kw["batch_size"],
        micro_batch_size=kw["micro_batch_size"],
        context_length=kw["context_length"],
        seed=kw["seed"],
        train_on=kw["train_on"],
        validation_fraction=kw["val_fraction"],
        max_steps=kw["max_steps"],
        checkpoint_every=kw["checkpoint_every"],
        threads=kw["threads"],
        replay_prompts=prompts,
    )
    from tqdm import tqdm

    bar: Any = None

    def on_step(report: Any) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=report.total_steps, desc="training", unit="step", file=sys.stderr)
            bar.update(report.step - 1)
        shown = {"loss": f"{report.loss:.4f}", "lr": f"{report.learning_rate:.2e}"}
        if report.validation_loss is not None:
            shown["val"] = f"{report.validation_loss:.4f}"
        bar.set_postfix(shown)
        bar.update(1)

    from terminus.finetune.data import check_trainable, read_jsonl

    # bad data fails here, before the model takes its time to load
    examples = read_jsonl(Path(dataset).expanduser())
    check_trainable(examples, assistant_only=options.train_on == "assistant", name=dataset)
    click.echo(f"loading {base} for training…", err=True)
    try:
        card, result = state.client().finetune(
            base,
            dataset,
            options,
            model_id=kw["model_id"],
            validation=kw["validation"],
            resume=kw["resume"],
            on_step=on_step,
        )
    finally:
        if bar is not None:
            bar.close()
    summary = (
        f"{result.steps}/{result.total_steps} steps, {result.seconds_per_step:.2f} s/step, "
        f"peak memory {result.peak_rss_bytes / 2**20:.0f} MiB"
    )
    if result.train_losses:
        summary += f", last loss {result.train_losses[-1]:.4f}"
    if result.validation_losses:
        summary += f", validation loss {result.validation_losses[-1]:.4f}"
    if card is None:
        click.echo(f"stopped: {summary}; continue with --resume", err=True)
        sys.exit(130)
    click.echo(f"{card.id}: LoRA adapter on {card.base_model} ({summary})")


@click.command()
@click.argument("model", metavar="MODEL")
@click.option(
    "-q",
    "--type",
    "qtype",
    metavar="TYPE",
    help="Q4_K_M, Q5_K_M, Q4_K_S, Q6_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16 or F32.",
)
@click.option("-t", "old_qtype", hidden=True, metavar="TYPE")  # before -t meant --temperature
@click.option("--json", "as_json", is_flag=True, help="Print the new model as JSON.")
@click.option(
    "--imatrix",
    type=click.Path(exists=True, dir_okay=False),
    help="A saved importance matrix (GGUF imatrix file).",
)
@click.option(
    "--calibrate",
    type=click.Path(exists=True, dir_okay=False),
    metavar="TEXT_FILE",
    help="Measure an importance matrix on this text first (needs torch).",
)
@click.option(
    "--save-imatrix", type=click.Path(dir_okay=False), help="Keep the measured matrix here."
)
@click.option("--id", "model_id", metavar="ID", help="Id of the new model [default MODEL-type].")
@click.option("--threads", type=int, help="torch threads for --calibrate.")
@pass_state
def quantize(
    state: CliState,
    model: str,
    qtype: str | None,
    old_qtype: str | None,
    as_json: bool,
    imatrix: str | None,
    calibrate: str | None,
    save_imatrix: str | None,
    model_id: str | None,
    threads: int | None,
) -> None:
    """Quantize MODEL to TYPE with llama.cpp's quantizers; add the result as a new model.

    Mixed types (Q4_K_M…) follow llama.cpp's per-tensor rules. An importance matrix
    (--imatrix, or --calibrate TEXT_FILE to measure one) lowers the quality loss.

    \b
    Examples:
      terminus quantize smollm2-f32 --type Q8_0
      terminus quantize smollm2-f32 -q Q4_K_M --calibrate wiki.txt --save-imatrix smol.imatrix
    """
    from terminus.models.progress import terminal_progress

    if old_qtype is not None:
        if qtype is not None:
            raise click.UsageError("give the type once, with --type (or -q)")
        click.echo("note: -t is now -q (or --type); -t is --temperature elsewhere", err=True)
    qtype = qtype or old_qtype
    if qtype is None:
        raise click.UsageError("Missing option '-q' / '--type'.")
    card = state.client().quantize(
        model,
        qtype,
        imatrix=imatrix,
        calibration_text=_read_text(calibrate) if calibrate else None,
        save_imatrix=save_imatrix,
        model_id=model_id,
        threads=threads,
        on_step=lambda text: click.echo(text + "…", err=True),
        progress=terminal_progress(),
    )
    if as_json:
        data = {
            "id": card.id,
            "name": card.name,
            "base_model": card.base_model,
            "type": qtype.upper(),
            "size": card.size,
            "sha256": card.main_file.sha256,
        }
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{card.id}: {card.name}, {card.size / 1e6:.1f} MB")


@click.command()
@click.argument("reference", metavar="BASE")
@click.argument("others", nargs=-1, required=True, metavar="MODEL...")
@click.option(
    "--text",
    "text_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Text to score on.",
)
@click.option("--context", default=256, show_default=True, help="Tokens per scored window.")
@click.option("--max-windows", type=int, help="Score at most this many windows.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw the table as a PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--threads", default=1, show_default=True, help="llama.cpp threads.")
@pass_state
def compare(
    state: CliState,
    reference: str,
    others: tuple[str, ...],
    text_file: str,
    context: int,
    max_windows: int | None,
    png: str | None,
    as_json: bool,
    threads: int,
) -> None:
    """Compare MODELs against BASE on the same text: perplexity, KL, top-1, size.

    All models run through llama.cpp; KL is over the full vocabulary. Models are
    ids, aliases or .gguf paths.

    \b
    Example:
      terminus compare smollm2-f32 smollm2-f32-q8-0 smollm2-f32-q4-k-m --text eval.txt --png q.png
    """
    from terminus.quantize.compare import format_table

    scores = state.client().compare(
        reference,
        list(others),
        _read_text(text_file),
        context=context,
        max_windows=max_windows,
        threads=threads,
        plot=png,
    )
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in scores], indent=2))
    else:
        click.echo(format_table(scores))
    if png:
        click.echo(f"chart: {png}", err=True)
