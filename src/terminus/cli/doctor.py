from __future__ import annotations

import json

import click

from terminus.cli.context import CliState, pass_state
from terminus.runtime.memory import format_size


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def doctor(state: CliState, as_json: bool) -> None:
    """Show system resources, the cache, and which engines can run here (and why not)."""
    report = state.client().doctor()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"python      {report['python']} on {report['platform']}")
    click.echo(f"cpus        {report['cpus']}")
    click.echo(
        f"memory      {format_size(report['memory_available'])} free of "
        f"{format_size(report['memory_total'])}; budget {format_size(report['memory_budget'])}"
        f" (policy {report['memory_policy']})"
    )
    click.echo(
        f"home        {report['home']}  (cache {format_size(report['cache_bytes'])}, "
        f"disk free {format_size(report['disk_free'])})"
    )
    click.echo(f"network     {'offline' if report['offline'] else 'downloads allowed'}")
    default = report["default_model"]
    cached = "cached" if default.get("cached") else "not cached yet"
    click.echo(f"default     {default['id']} ({default.get('error') or cached})")
    click.echo("engines")
    for name, info in report["engines"].items():
        mark = "ok " if info["available"] else "-- "
        version = f" {info['version']}" if info.get("version") else ""
        click.echo(f"  {mark}{name:<12}{version}  {info['detail']}")
    vision = report["vision"]
    seeing = ", ".join(vision["models"]) or "none yet (terminus models add M.gguf --mmproj P.gguf)"
    reader = f"Pillow {vision['pillow']}" if vision["available"] else "needs Pillow"
    click.echo(f"vision      {'ok' if vision['available'] else '--'} ({reader}); models: {seeing}")
