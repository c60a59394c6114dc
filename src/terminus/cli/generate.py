"""``terminus run``: stream a completion from a model (and the flags ``chat`` shares)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from terminus.cli.context import CliState, pass_state
from terminus.cli.render import render_events
from terminus.cli.rpc import run_split, split_options
from terminus.errors import InvalidSchemaError
from terminus.models.card import check_can_see
from terminus.types.common import Capability


def generation_options(command: Any) -> Any:
    """Sampling flags shared by run and chat."""
    options = [
        click.option(
            "-m",
            "--model",
            metavar="MODEL",
            help="Model id or alias [default: the bundled default].",
        ),
        click.option("-s", "--system", metavar="TEXT", help="System prompt."),
        click.option("-t", "--temperature", type=float, help="0 is greedy; higher is more random."),
        click.option("--top-p", type=float, help="Nucleus sampling probability mass (0-1]."),
        click.option("--top-k", type=int, help="Sample from the k most likely tokens."),
        click.option("--min-p", type=float, help="Drop tokens below this fraction of the best."),
        click.option(
            "--repeat-penalty", type=float, help="Penalty for repeated tokens (1 = none)."
        ),
        click.option("--seed", type=int, help="Random seed for reproducible sampling."),
        click.option("-n", "--max-tokens", type=int, help="Stop after this many tokens."),
        click.option(
            "--stop", multiple=True, metavar="TEXT", help="Stop at this text (repeatable)."
        ),
        click.option("--context-length", type=int, help="Context window per request, in tokens."),
        click.option(
            "--speculative",
            type=click.Choice(["off", "ngram", "draft"]),
            help="Speculative decoding: n-gram prompt lookup, or a draft model (--draft).",
        ),
        click.option(
            "--draft",
            "draft_model",
            metavar="MODEL",
            help="A smaller model with the same tokenizer that drafts tokens for --model.",
        ),
        click.option("--draft-max", type=int, help="Tokens drafted per step [default: 8]."),
        click.option(
            "--kv-disk-cache",
            "kv_disk_cache",
            is_flag=True,
            default=None,
            help="Snapshot a long system prompt's KV state to disk; later runs restore it.",
        ),
        click.option("--stats", is_flag=True, help="Print token counts and speed to stderr."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _params(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "max_tokens")
    params = {k: kwargs[k] for k in keys if kwargs.get(k) is not None}
    if kwargs.get("stop"):
        params["stop"] = list(kwargs["stop"])
    return params


def load_extras(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Load options from the speculative decoding and KV snapshot flags (only those given)."""
    keys = ("speculative", "draft_model", "draft_max")
    extras = {k: kwargs[k] for k in keys if kwargs.get(k) is not None}
    if kwargs.get("kv_disk_cache"):  # absent: the card's default stands
        extras["kv_disk_cache"] = True
    return extras


def _load(state: CliState, model: str | None, kwargs: dict[str, Any]) -> str:
    client = state.client()
    info = client.load_model(model, context_length=kwargs["context_length"], **load_extras(kwargs))
    if state.runs_here():  # the next `terminus run` of this model can start loading it at once
        from terminus.cli.early import hint_key, write_hint
        from terminus.engines.llamacpp_proxy import last_loaded

        loaded = last_loaded()
        if loaded is not None:
            write_hint(client.home, hint_key(kwargs["model"]), loaded)
    return info.id


def _schema(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise InvalidSchemaError(f"--schema is neither a JSON file nor JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise InvalidSchemaError("--schema must be a JSON object")
    return schema


@click.command()
@click.argument("prompt", required=False)
@generation_options
@click.option("--schema", metavar="JSON|FILE", help="Constrain the answer to this JSON schema.")
@click.option("--json", "as_json", is_flag=True, help="Print events as JSON lines.")
@click.option(
    "--raw",
    is_flag=True,
    help="Continue PROMPT as plain text, without the chat template (base models "
    "always run this way).",
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    metavar="REF",
    help="Run on a provider peer (terminus:node/… or a known node id); repeat it for a pool "
    "(each request goes to the least busy one that shares the model).",
)
@click.option(
    "--fallback-local", is_flag=True, help="With --peer: run here if no peer can take it."
)
@click.option(
    "-i",
    "--image",
    "images",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Show the model this image with the prompt (repeatable; a vision model).",
)
@split_options
@pass_state
def run(
    state: CliState,
    prompt: str | None,
    schema: str | None,
    as_json: bool,
    raw: bool,
    peers: tuple[str, ...],
    fallback_local: bool,
    images: tuple[str, ...],
    split: str | None,
    tensor_split: str | None,
    **kwargs: Any,
) -> None:
    """Stream an answer to PROMPT (or to standard input when PROMPT is absent or -).

    \b
    Examples:
      terminus run "Why is the sky blue?"
      terminus run -m qwen -t 0 "Translate to French: good morning"
      echo "List three colors" | terminus run --json
      terminus run --schema '{"type":"object","properties":{"name":{"type":"string"}}}' "A name"
      terminus run -m gemma-3-270m "Once upon a time"     (a base model: raw continuation)
      terminus run --peer terminus:node/…?addr=192.168.1.7:4433 "Hi"   (on a provider peer)
      terminus run -m MY-VLM "What is in this picture?" --image photo.jpg
      terminus run --peer NODE_A --peer NODE_B "Hi"       (on the least busy of a pool)
      terminus run --split WORKER_A,WORKER_B "Hi"        (layers spread over RPC workers)
      terminus run -m qwen2.5-coder-1.5b --draft qwen "Write a quicksort"   (speculative)
    """
    if prompt is None or prompt == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give a PROMPT or pipe one on standard input")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.UsageError("the prompt is empty")
    if not peers and not split and state.runs_here():
        from terminus.engines.llamacpp_proxy import prestart_worker

        prestart_worker()  # its start overlaps the client's; the load takes it
    client = state.client()
    if split:
        if peers:
            raise click.UsageError("--split and --peer are two different ways to run")
        run_split(
            state,
            kwargs["model"] or client.default_model,
            prompt,
            split,
            max_tokens=kwargs["max_tokens"] or 256,
            raw=raw,
            context_length=kwargs["context_length"],
            threads=kwargs.get("threads"),
            tensor_split=tensor_split,
        )
        return
    if peers:
        from terminus.cli.node import use_peer

        use_peer(state, peers, fallback_local)
    params = _params(kwargs)
    card = client.models.get(kwargs["model"] or client.default_model)
    if images:
        check_can_see(card)  # before loading: a text-only model is an error naming it
    raw = raw or card.capability == Capability.COMPLETION
    if raw:
        if kwargs["system"]:
            raise click.UsageError("--system has no meaning for raw text completion")
        if images:
            raise click.UsageError("--image needs the chat template; it cannot go with --raw")
        make_stream = lambda model_id: client.text_completion(  # noqa: E731
            prompt, model=model_id, response_format=_schema(schema), **params
        )
    else:
        request_kwargs = dict(system=kwargs["system"], response_format=_schema(schema), **params)
        message: Any = [{"role": "user", "content": prompt, "images": list(images)}]
        make_stream = lambda model_id: client.completion(  # noqa: E731
            message if images else prompt, model=model_id, **request_kwargs
        )
    stream = make_stream(card.id)  # validates every flag before the model loads
    _load(state, card.id, kwargs)
    try:
        done = render_events(stream, as_json=as_json, show_stats=kwargs["stats"])
    except KeyboardInterrupt:
        stream.cancel()
        raise
    if done is not None and done.stop_reason == "error":
        sys.exit(1)
