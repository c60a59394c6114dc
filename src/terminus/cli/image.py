"""``terminus image``: generate images from a prompt, with a progress bar."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from terminus.cli.context import CliState, pass_state
from terminus.errors import ModelNotFoundError
from terminus.types.image import SAMPLERS, SCHEDULERS, ImageProgress, ImageResult, RGBImage

IMAGE_SUFFIXES = {"", ".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class ImageCommand(click.Command):
    """Says where image models come from when the one asked for is not added yet."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelNotFoundError as exc:
            raise _not_added(ctx.params.get("model"), exc) from exc


def _not_added(model: str | None, exc: ModelNotFoundError) -> ModelNotFoundError:
    """Point at ``image-models``: no image model comes with Terminus, each is added by hand."""
    from terminus.client.image_models import PRESETS

    preset = next(
        (p for p in PRESETS.values() if model is not None and model in (p.id, *p.aliases)), None
    )
    if preset is not None:
        return ModelNotFoundError(
            f"{model} is a known image model that is not added yet",
            hint=f"download it from {preset.url}, then `terminus image-models add PATH "
            f"--preset {preset.id}` (see `terminus image-models list`)",
        )
    return ModelNotFoundError(
        exc.message, hint="see `terminus image-models list` for image models to add"
    )


@click.command(cls=ImageCommand)
@click.argument("prompt")
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    envvar="TERMINUS_IMAGE_MODEL",
    help="Image model id or alias [env TERMINUS_IMAGE_MODEL].",
)
@click.option(
    "-o",
    "--output",
    default="image.png",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the image; with --count N, NAME-1.png … NAME-N.png.",
)
@click.option("--negative", default="", metavar="TEXT", help="What the image should not show.")
@click.option("-W", "--width", type=int, help="Width in pixels, a multiple of 8 [card default].")
@click.option("-H", "--height", type=int, help="Height in pixels, a multiple of 8 [card default].")
@click.option("--steps", type=int, help="Sampling steps [card default: 1 for SDXS, ~20 for SD1.5].")
@click.option(
    "--cfg-scale", type=float, help="Prompt guidance; 1 for distilled models [card default]."
)
@click.option("--seed", type=int, help="Seed for a reproducible image [default: random, printed].")
@click.option("--sampler", type=click.Choice(SAMPLERS), help="Sampling method [model default].")
@click.option("--scheduler", type=click.Choice(SCHEDULERS), help="Noise schedule [model default].")
@click.option("-n", "--count", type=int, default=1, show_default=True, help="Images to make.")
@click.option(
    "--init-image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Start from this image (image-to-image).",
)
@click.option(
    "--strength",
    type=float,
    default=0.75,
    show_default=True,
    help="With --init-image: how far to move away from it (0 keeps it, 1 ignores it).",
)
@click.option("--threads", type=int, help="CPU threads for the engine [physical cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the result's stats as JSON.")
@pass_state
def image(
    state: CliState,
    prompt: str,
    model: str | None,
    output: Path,
    negative: str,
    width: int | None,
    height: int | None,
    steps: int | None,
    cfg_scale: float | None,
    seed: int | None,
    sampler: str | None,
    scheduler: str | None,
    count: int,
    init_image: Path | None,
    strength: float,
    threads: int | None,
    as_json: bool,
) -> None:
    """Generate an image from PROMPT and write it as PNG (or the type -o names).

    \b
    Examples:
      terminus image "a lighthouse at dusk, oil painting" -m sdxs -o lighthouse.png
      terminus image "a red fox" -m sd-turbo --steps 4 --seed 7 -n 2 -o fox.png
      terminus image "the same, in winter" -m sd1.5 --init-image fox-1.png --strength 0.6
    """
    from tqdm import tqdm

    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise click.BadParameter(
            f"write {', '.join(sorted(IMAGE_SUFFIXES - {''}))} files", param_hint="-o"
        )
    client = state.client()
    if model is None and not os.environ.get("TERMINUS_IMAGE_MODEL"):
        model = _installed_image_model(client)
    if threads is not None:
        if not model:
            raise click.UsageError("--threads needs --model (it applies when the model loads)")
        client.load_model(model, threads=threads)
    stream = client.generate_image(
        model,
        prompt,
        negative_prompt=negative,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg_scale,
        seed=seed,
        sampler=sampler,
        scheduler=scheduler,
        count=count,
        init_image=init_image,
        strength=strength,
    )
    bar: tqdm[Any] | None = None
    result: ImageResult | None = None
    try:
        for event in stream:
            if isinstance(event, ImageProgress):
                if bar is None:
                    bar = tqdm(total=event.total, unit="step", desc="sampling", leave=False)
                bar.update(event.step - int(bar.n))
            else:
                result = event
    finally:
        if bar is not None:
            bar.close()
    assert result is not None  # the stream ends with the result or raises
    paths = _output_paths(output, len(result.images))
    for path, picture in zip(paths, result.images, strict=True):
        _write_atomically(picture, path)
    stats = result.stats
    if as_json:
        payload = {"model": result.model, "files": [str(p) for p in paths], **stats.model_dump()}
        click.echo(json.dumps(payload))
        return
    plural = "s" if stats.steps != 1 else ""
    click.echo(
        f"wrote {', '.join(str(p) for p in paths)} ({stats.width}x{stats.height}, seed "
        f"{stats.seed}, {stats.steps} step{plural}, {stats.generate_s:.1f} s"
        + (f" + {stats.load_s:.1f} s loading" if stats.load_s else "")
        + ")"
    )


def _installed_image_model(client: Any) -> str:
    """The image model to use when none is named: the first one in the cache."""
    from terminus.errors import ModelNotCachedError

    for status in client.models.list():
        if status.card.capability == "image" and status.cached:
            return str(status.card.id)
    raise ModelNotCachedError(
        "no image model is installed",
        hint="get one with `terminus image-models pull sdxs` (~1.8 GB) or `sd-turbo`",
    )


def _output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, count + 1)]


def _write_atomically(picture: RGBImage, path: Path) -> None:
    """Write to a temporary file next to ``path``, then rename: never a half-written image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix or ".png"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        picture.to_pil().save(tmp, format=None if path.suffix else "PNG")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a saved image is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.group("image-models")
def image_models() -> None:
    """Image models: pull one from the Hugging Face Hub, or add files you downloaded.

    \b
    terminus image-models pull sdxs               fetched and verified (sd-turbo too)
    terminus image-models list                    presets and where to download them
    terminus image-models add PATH --preset sdxs  hash a downloaded copy into the cache
    """


@image_models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the presets as JSON.")
def list_presets(as_json: bool) -> None:
    """Known image models, their download address and defaults."""
    from terminus.client.image_models import PRESETS, TAESD_URL

    if as_json:
        rows = [
            {
                "id": p.id,
                "aliases": list(p.aliases),
                "name": p.name,
                "layout": p.layout,
                "size": p.size,
                "license": p.license,
                "url": p.url,
                "defaults": p.defaults,
                "note": p.note,
            }
            for p in PRESETS.values()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        (
            p.id,
            ", ".join(p.aliases) or "-",
            p.size or "-",
            " ".join(f"{k}={v}" for k, v in p.defaults.items()) or "-",
        )
        for p in PRESETS.values()
    ]
    header = ("PRESET", "ALIASES", "SIZE", "DEFAULTS")
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header) - 1)]
    for row in (header, *table):
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, row[-1]]))
    click.echo()
    for p in PRESETS.values():
        note = f" ({p.note})" if p.note else ""
        click.echo(f"{p.id}: {p.name}, {p.layout}, licence: {p.license}{note}")
        click.echo(f"    {p.url}")
    click.echo(f"taesd (fast decoder for SD1/SD2, pass with --taesd): {TAESD_URL}")


@image_models.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--preset", required=True, help="Which model it is (see `image-models list`).")
@click.option("--id", "model_id", metavar="ID", help="Id to give it [default: the preset's].")
@click.option(
    "--taesd",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TAESD decoder file to decode with (faster, slightly softer images).",
)
@pass_state
def add_model(
    state: CliState, path: Path, preset: str, model_id: str | None, taesd: Path | None
) -> None:
    """Hash the downloaded PATH (a file, or a diffusers folder) into the cache and add a card.

    The card pins the sha256 of what you downloaded; later loads verify against it.
    """
    from terminus.client.image_models import add_image_model
    from terminus.models.progress import TqdmProgress

    client = state.client()
    card = add_image_model(
        client.catalog,
        client.cache,
        path,
        preset=preset,
        model_id=model_id,
        taesd=taesd,
        progress=TqdmProgress(),
    )
    click.echo(f"added {card.id} ({len(card.files)} files, {card.size / 1e9:.2f} GB)")
