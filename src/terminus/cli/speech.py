"""``terminus transcribe | speak | ocr | translate``: speech, voices, OCR and translation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from terminus.cli.context import CliState, pass_state


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="Speech model [default: whisper-base, env TERMINUS_STT_MODEL].",
)
@click.option(
    "-l", "--language", metavar="CODE", help="Spoken language, e.g. en or fr [default: detect]."
)
@click.option(
    "--translate", is_flag=True, help="Translate the speech to English text (multilingual models)."
)
@click.option("--words", is_flag=True, help="Word timestamps (in --json output).")
@click.option("--prompt", metavar="TEXT", help="Initial prompt: context or spellings to expect.")
@click.option("--hotwords", metavar="TEXT", help="Words to favour (names, jargon).")
@click.option("--vad", is_flag=True, help="Skip silences longer than 2 s before decoding.")
@click.option(
    "--json", "fmt", flag_value="json", help="Everything as JSON: segments, language, timings."
)
@click.option("--srt", "fmt", flag_value="srt", help="SubRip subtitles.")
@click.option("--vtt", "fmt", flag_value="vtt", help="WebVTT subtitles.")
@pass_state
def transcribe(
    state: CliState,
    file: Path,
    model: str | None,
    language: str | None,
    translate: bool,
    words: bool,
    prompt: str | None,
    hotwords: str | None,
    vad: bool,
    fmt: str | None,
) -> None:
    """Transcribe the speech in FILE (wav, mp3, flac, ogg, …).

    \b
    Examples:
      terminus transcribe meeting.mp3
      terminus transcribe interview.wav --srt > interview.srt
      terminus transcribe -m whisper-base --translate french.ogg
    """
    bar = _progress_bar(file.name)
    try:
        result = state.client().transcribe(
            model,
            file,
            language=language,
            task="translate" if translate else "transcribe",
            word_timestamps=words,
            initial_prompt=prompt,
            hotwords=hotwords,
            vad_filter=vad,
            progress=bar.update if bar else None,
        )
    finally:
        if bar:
            bar.close()
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    elif fmt == "srt":
        click.echo(result.srt(), nl=False)
    elif fmt == "vtt":
        click.echo(result.vtt(), nl=False)
    else:
        click.echo(result.text)
        click.echo(
            f"[{result.model}: {result.duration_s:.1f} s of {result.language or '?'} audio "
            f"(p={result.language_probability:.2f}) in {result.total_s:.2f} s]",
            err=True,
        )


class _SecondsBar:
    """A tqdm bar in seconds of audio, shown only on a terminal."""

    def __init__(self, name: str) -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(
            total=None,
            desc=name,
            unit="s",
            file=sys.stderr,
            leave=False,
            bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s",
        )

    def update(self, done: float, total: float) -> None:
        self._bar.total = round(total)
        self._bar.n = round(done)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _progress_bar(name: str) -> _SecondsBar | None:
    return _SecondsBar(name) if sys.stderr.isatty() else None


@click.command()
@click.argument("text", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="WAV file to write.",
)
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="Voice [default: en_us-joe-medium, env TERMINUS_TTS_MODEL].",
)
@click.option(
    "--speed",
    type=click.FloatRange(0.25, 4.0),
    default=1.0,
    show_default=True,
    help="Speaking rate; 1.5 is 50% faster.",
)
@click.option(
    "--speaker", type=click.IntRange(min=0), help="Speaker number (multi-speaker voices)."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_state
def speak(
    state: CliState,
    text: str | None,
    output: Path,
    model: str | None,
    speed: float,
    speaker: int | None,
    as_json: bool,
) -> None:
    """Say TEXT (or stdin) with a local voice and write it to a WAV file.

    \b
    Examples:
      terminus speak "Hello from Terminus." -o hello.wav
      cat chapter.txt | terminus speak -o chapter.wav --speed 1.2
    """
    text = text if text is not None else _stdin_text()
    result = state.client().speak(model, text, speed=speed, speaker=speaker, output=output)
    click.echo(
        f"wrote {output}: {result.duration_s:.1f} s at {result.sample_rate} Hz, "
        f"{result.chunks} sentence chunk(s) in {result.total_s:.2f} s",
        err=True,
    )
    if as_json:
        data = {
            "model": result.model,
            "output": str(output),
            "duration_s": round(result.duration_s, 3),
            "sample_rate": result.sample_rate,
            "chunks": result.chunks,
            "total_s": round(result.total_s, 3),
        }
        click.echo(json.dumps(data, indent=2))


@click.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="OCR model [default: pp-ocrv6-small, env TERMINUS_OCR_MODEL].",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    help="Drop blocks read with less confidence.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Blocks with text, box and confidence, as JSON."
)
@pass_state
def ocr(
    state: CliState, image: Path, model: str | None, min_confidence: float | None, as_json: bool
) -> None:
    """Read the text in IMAGE (PNG, JPEG, …), in reading order.

    \b
    Examples:
      terminus ocr receipt.jpg
      terminus ocr --json scan.png > blocks.json
    """
    result = state.client().ocr(model, image, min_confidence=min_confidence)
    if as_json:
        data = result.model_dump(mode="json")
        data["text"] = result.text
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(result.text)
    click.echo(
        f"[{result.model}: {len(result.blocks)} block(s), {result.width}x{result.height}, "
        f"{result.total_s:.2f} s]",
        err=True,
    )


@click.command()
@click.argument("text", required=False)
@click.option(
    "--to", "target", metavar="CODE", required=True, help="Target language (ISO 639-1), e.g. fr."
)
@click.option("--from", "source", metavar="CODE", help="Source language [default: detect].")
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="Translation or chat model [default: qwen, env TERMINUS_TRANSLATE_MODEL].",
)
@click.option("--max-tokens", type=click.IntRange(min=1), help="Longest translation, in tokens.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the whole translation as JSON (no streaming)."
)
@pass_state
def translate(
    state: CliState,
    text: str | None,
    target: str,
    source: str | None,
    model: str | None,
    max_tokens: int | None,
    as_json: bool,
) -> None:
    """Translate TEXT (or stdin) and stream the result.

    \b
    Examples:
      terminus translate "Good morning, how are you?" --to fr
      terminus translate --from de --to en "Guten Morgen"
      cat notes.txt | terminus translate --to es -m my-opus-mt-en-es
    """
    from terminus.cli.render import render_events

    text = text if text is not None else _stdin_text()
    client = state.client()
    if as_json:
        result = client.translate(
            text, target=target, source=source, model=model, max_tokens=max_tokens
        )
        click.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    stream = client.translate_stream(text, target, source, model=model, max_tokens=max_tokens)
    done = render_events(stream, as_json=False, show_stats=False)
    if done is not None and done.stop_reason == "error":
        sys.exit(11)


def _stdin_text() -> str:
    if sys.stdin.isatty():
        raise click.UsageError("give TEXT or pipe it on stdin")
    text = sys.stdin.read()
    if not text.strip():
        raise click.UsageError("stdin was empty")
    return text


@click.group("translate-models")
def translate_models() -> None:
    """CTranslate2 translation models (OPUS-MT): the online list, and adding converted ones."""


@translate_models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
@pass_state
def translate_models_list(state: CliState, as_json: bool) -> None:
    """Published OPUS-MT models (convert them once) and the translation models cached here."""
    from terminus.client.nmt_models import online_nmt_models

    client = state.client()
    installed = {c.id for c in client.catalog.all() if c.capability == "translate"}
    if as_json:
        online = {m.id for m in online_nmt_models()}
        rows = [
            {
                "id": m.id,
                "source": m.source,
                "targets": list(m.targets),
                "added": m.id in installed,
                "page": m.page,
            }
            for m in online_nmt_models()
        ]
        for card_id in sorted(installed - online):
            card = client.catalog.get(card_id)
            rows.append(
                {
                    "id": card_id,
                    "source": card.defaults.get("source"),
                    "targets": list(card.defaults.get("targets", [])),
                    "added": True,
                    "page": None,
                }
            )
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for model in online_nmt_models():
        mark = "added" if model.id in installed else "online"
        click.echo(
            f"{model.id:18} {model.source}→{','.join(model.targets):6} {mark:7} {model.page}"
        )
    for card_id in sorted(installed - {m.id for m in online_nmt_models()}):
        card = client.catalog.get(card_id)
        pairs = f"{card.defaults.get('source')}→{','.join(card.defaults.get('targets', []))}"
        click.echo(f"{card_id:18} {pairs:9} added")


@translate_models.command("add")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "model_id", required=True, help="Model id, e.g. opus-mt-en-fr.")
@click.option("--source", metavar="CODE", help="Source language [default: from the online list].")
@click.option("--target", "targets", metavar="CODE", multiple=True, help="Target language(s).")
@pass_state
def translate_models_add(
    state: CliState, folder: Path, model_id: str, source: str | None, targets: tuple[str, ...]
) -> None:
    """Add a converted CTranslate2 model FOLDER (model.bin, *.spm, vocabularies).

    \b
    Example:
      ct2-transformers-converter --model Helsinki-NLP/opus-mt-en-fr \\
          --output_dir opus-mt-en-fr --copy_files source.spm target.spm
      terminus translate-models add opus-mt-en-fr --id opus-mt-en-fr
      terminus translate "Good morning" --to fr -m opus-mt-en-fr
    """
    from terminus.client.nmt_models import add_nmt_model

    client = state.client()
    card = add_nmt_model(
        client.catalog, client.cache, folder, model_id=model_id, source=source, targets=targets
    )
    pairs = ", ".join(f"{card.defaults['source']}→{t}" for t in card.defaults["targets"])
    click.echo(f"added {card.id} ({pairs}, {len(card.files)} files hashed into the cache)")
