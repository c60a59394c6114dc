"""Rendering completion events to a terminal or as JSON lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import click

from terminus.types import Completion, ContentDelta, Done, Stats, ThinkingDelta, ToolCallEvent


def render_events(events: Iterable[Any], *, as_json: bool, show_stats: bool) -> Done | None:
    """Write events as they arrive; returns the final Done event."""
    done: Done | None = None
    wrote_text = False
    for event in events:
        if as_json:
            click.echo(event.model_dump_json())
        elif isinstance(event, ContentDelta):
            click.echo(event.text, nl=False)
            sys.stdout.flush()
            wrote_text = True
        elif isinstance(event, ThinkingDelta):
            click.secho(event.text, nl=False, dim=True, err=True)
        elif isinstance(event, ToolCallEvent):
            call = {"tool_call": event.call.name, "arguments": event.call.arguments}
            click.echo(json.dumps(call))
        elif isinstance(event, Stats) and show_stats:
            if wrote_text:
                click.echo()
                wrote_text = False
            click.echo(format_stats(event), err=True)
        if isinstance(event, Done):
            done = event
    if wrote_text and not as_json:
        click.echo()
    if done is not None and done.stop_reason in ("length", "cancelled", "error") and not as_json:
        note = done.error or {"length": "stopped at the token limit", "cancelled": "cancelled"}.get(
            done.stop_reason, ""
        )
        click.secho(f"[{note}]", err=True, dim=True)
    return done


def format_stats(stats: Stats) -> str:
    return f"[{stats}]"


def completion_json(completion: Completion) -> str:
    return completion.model_dump_json()
