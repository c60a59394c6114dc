"""``terminus speak | transcribe | ocr | translate`` on the real models, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from nmt_builder import build_nmt_model
from speechkit import render_line

from terminus.cli.main import cli
from terminus.models.catalog import Catalog

pytestmark = pytest.mark.real


@pytest.fixture
def run(speech_home: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TERMINUS_HOME", str(speech_home))  # reuse the verified blobs
    monkeypatch.setenv("TERMINUS_THREADS", "1")

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, ["--offline", *args], input=input)

    return invoke


def test_speak_then_transcribe(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = tmp_path / "hello.wav"
    spoken = run("speak", "Good morning. The museum opens next week.", "-o", str(wav))
    assert spoken.exit_code == 0, spoken.output
    assert wav.read_bytes()[:4] == b"RIFF" and "2 sentence chunk(s)" in spoken.stderr
    heard = run("transcribe", str(wav), "-m", "whisper-tiny.en")
    assert heard.exit_code == 0, heard.output
    assert "museum opens next week" in heard.stdout.lower()
    srt = run("transcribe", str(wav), "-m", "tiny.en", "--srt")
    assert srt.stdout.startswith("1\n00:00:00,000 --> ")
    data = json.loads(run("transcribe", str(wav), "-m", "tiny.en", "--json", "--words").stdout)
    assert data["language"] == "en" and data["segments"][0]["words"]


def test_speak_json(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = tmp_path / "json.wav"
    result = run("speak", "One sentence. And another.", "-o", str(wav), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(wav) and data["model"] == "en_us-joe-medium"
    assert data["chunks"] == 2 and data["sample_rate"] == 22050
    assert data["duration_s"] == pytest.approx((wav.stat().st_size - 44) / 2 / 22050, abs=0.01)


def test_speak_reads_stdin(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = tmp_path / "stdin.wav"
    result = run("speak", "-o", str(wav), "--speed", "1.3", input="Read from standard input.")
    assert result.exit_code == 0, result.output and wav.stat().st_size > 1000


def test_ocr(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = tmp_path / "line.png"
    image.write_bytes(render_line("Printed on the command line", "roboto"))
    result = run("ocr", str(image))
    assert result.exit_code == 0 and result.stdout == "Printed on the command line\n"
    blocks = json.loads(run("ocr", "--json", str(image)).stdout)["blocks"]
    assert blocks[0]["text"] == "Printed on the command line" and len(blocks[0]["box"]) == 4


def test_translate_with_a_built_nmt_model(run, speech_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    card = build_nmt_model(tmp_path / "nmt").model_copy(update={"user_added": True})
    Catalog(speech_home / "cards").save_user_card(card)
    try:
        result = run("translate", "the red dog eats", "--to", "fr", "--from", "en", "-m", card.id)
        assert result.exit_code == 0 and result.stdout == "le rouge chien mange\n"
        result = run("translate", "the red dog eats", "--to", "fr", "-m", card.id, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["text"] == "le rouge chien mange" and data["model"] == card.id
        assert (data["source"], data["target"], data["source_detected"]) == ("en", "fr", True)
        refused = run("translate", "hallo", "--to", "de", "--from", "en", "-m", card.id)
        assert refused.exit_code == 23 and "does not translate en→de" in refused.stderr
    finally:
        Catalog(speech_home / "cards").delete_user_card(card.id)


def test_bad_input_exit_codes(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text_file = tmp_path / "notes.wav"
    text_file.write_text("not audio")
    result = run("transcribe", str(text_file), "-m", "tiny.en")
    assert result.exit_code == 21 and result.stderr.startswith("error: cannot decode the audio")
    result = run("ocr", str(text_file))
    assert result.exit_code == 22 and "not an image" in result.stderr
    result = run("transcribe", str(tmp_path / "missing.wav"))
    assert result.exit_code == 24 and "cannot read" in result.stderr  # not a RAG code
