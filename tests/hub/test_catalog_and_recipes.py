"""The Hub catalog by name, image models from the Hub, and models created from recipes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hub_fixture import FakeHub

from terminus import Terminus
from terminus.cli.main import cli
from terminus.errors import InvalidModelFileError, InvalidParameterError
from terminus.models.hub_catalog import hub_entries, search_entries

PIRATE = """\
from = "smollm2"
name = "Pirate SmolLM2"
system = "You are Captain Hook."

[parameters]
temperature = 0.0
seed = 42
max_tokens = 16
"""


def test_catalog_entries_name_repos_never_hashes() -> None:
    entries = hub_entries()
    names = {e.name for e in entries}
    assert {"qwen3:0.6b", "qwen3:8b", "llama3.2:1b", "gemma3:4b", "phi4-mini"} <= names
    assert {"smolvlm:500m", "sd-turbo", "whisper:large-v3-turbo"} <= names
    assert len({e.id for e in entries}) == len(entries)
    text = (Path(__file__).parents[2] / "src/terminus/models/online/hub.toml").read_text()
    assert "sha256 =" not in text
    for e in entries:
        assert e.quant or e.files, e.name  # GGUF picks by quant, the rest name files
    assert [e.name for e in search_entries("qwen3 8b")] == ["qwen3:8b"]
    assert {e.kind for e in search_entries(kind="image")} == {"image"}


def test_models_search_cli() -> None:
    result = CliRunner().invoke(cli, ["models", "search", "llama"])
    assert result.exit_code == 0, result.output
    assert (
        "llama3.2:1b" in result.output and "bartowski/Llama-3.2-1B-Instruct-GGUF" in result.output
    )


def test_catalog_name_pulls_and_pins(hub: FakeHub, isolated_home: Path, smollm2_gguf: Path) -> None:
    hub.add_file("unsloth/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q4_K_M.gguf", smollm2_gguf)
    hub.add_file("unsloth/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf", b"x" * 1000, lfs=True)
    result = CliRunner().invoke(cli, ["models", "pull", "qwen3:0.6b"])
    assert result.exit_code == 0, result.output
    assert "downloading Qwen3-0.6B-Q4_K_M.gguf" in result.output  # one line per phase
    assert "\nqwen3-0.6b: 1 file(s) verified" in result.output
    card = tomllib.loads((isolated_home / "cards" / "qwen3-0.6b.toml").read_text())
    sha = hub.repos["unsloth/Qwen3-0.6B-GGUF"].files["Qwen3-0.6B-Q4_K_M.gguf"].sha256
    assert card["files"][0]["sha256"] == sha
    assert "qwen3:0.6b" in card["aliases"]
    listed = CliRunner().invoke(cli, ["models", "search", "qwen3:0.6b"])
    assert "cached" in listed.output


def test_medpsy_by_name_picks_the_imatrix_q4_k_m(
    hub: FakeHub, isolated_home: Path, smollm2_gguf: Path
) -> None:
    repo = "qvac/MedPsy-1.7B-GGUF"
    hub.add_file(repo, "medpsy-1.7b-q4_k_m-imat.gguf", smollm2_gguf)
    hub.add_file(repo, "medpsy-1.7b-q8_0.gguf", b"y" * 1000, lfs=True)
    hub.add_file(repo, "medpsy-1.7b-bf16.gguf", b"z" * 1000, lfs=True)
    assert {e.name for e in search_entries("medpsy")} == {
        "medpsy:1.7b",
        "medpsy:4b",
        "medpsy:4b-bf16",
    }
    result = CliRunner().invoke(cli, ["models", "pull", "medpsy:1.7b"])
    assert result.exit_code == 0, result.output
    card = tomllib.loads((isolated_home / "cards" / "medpsy-1.7b.toml").read_text())
    assert [f["sha256"] for f in card["files"]] == [
        hub.repos[repo].files["medpsy-1.7b-q4_k_m-imat.gguf"].sha256
    ]


def test_image_model_from_the_hub(hub: FakeHub, isolated_home: Path) -> None:
    repo = "IDKiro/sdxs-512-dreamshaper"
    for i, path in enumerate(
        (
            "unet/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors",
            "vae/diffusion_pytorch_model.safetensors",
        )
    ):
        hub.add_file(repo, path, bytes([i]) * 4096, lfs=True)
    hub.add_file(repo, "README.md", b"# sdxs\n")
    result = CliRunner().invoke(cli, ["image-models", "pull", "sdxs"])
    assert result.exit_code == 0, result.output
    with Terminus(home=isolated_home) as t:
        card = t.models.get("sdxs")
        files = t.cache.files(card)
    assert (card.engine, card.format, card.capability) == ("stable-diffusion", "diffusers", "image")
    assert (files.root / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert card.defaults["steps"] == 1
    wrong = CliRunner().invoke(cli, ["image-models", "pull", "qwen3:0.6b"])
    assert wrong.exit_code == 3, wrong.output


def test_image_with_nothing_installed_says_how_in_one_line(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["image", "a red fox"])
    assert result.exit_code == 6
    assert result.output.count("\n") == 1
    assert "terminus image-models pull sdxs" in result.output


@pytest.mark.real
def test_created_model_round_trip(isolated_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "pirate.toml"
    recipe.write_text(PIRATE)
    result = CliRunner().invoke(cli, ["create", "pirate", "-f", str(recipe)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "created pirate from smollm2-135m-instruct"
    shown = CliRunner().invoke(cli, ["models", "show", "pirate", "--recipe"])
    assert shown.output == PIRATE
    listed = CliRunner().invoke(cli, ["models", "list"])
    assert "pirate" in listed.output
    with Terminus(home=isolated_home, memory_budget="2G") as t:
        card = t.models.get("pirate")
        base = t.models.get("smollm2")
        assert card.files == base.files  # the same blobs: stored once
        assert card.base_model == base.id
        assert card.defaults["system_prompt"] == "You are Captain Hook."
        t.load_model("pirate", context_length=512, threads=1)
        answer = t.completion("Who are you?", model="pirate").result()
        t.load_model("smollm2", context_length=512, threads=1)
        plain = t.completion("Who are you?", temperature=0.0, seed=42, model="smollm2").result()
        same = t.completion(
            "Who are you?",
            system="You are Captain Hook.",
            temperature=0.0,
            seed=42,
            max_tokens=16,
            model="smollm2",
        ).result()
    # the created model is exactly its base with the recipe's system prompt and parameters
    assert answer.stats.prompt_tokens == same.stats.prompt_tokens
    assert answer.text == same.text
    assert answer.stats.completion_tokens <= 16  # max_tokens = 16 from the recipe
    assert "captain" in answer.text.lower(), answer.text
    assert "captain" not in plain.text.lower(), plain.text  # the base's own system prompt


def test_recipe_errors_are_typed(isolated_home: Path, tmp_path: Path) -> None:
    with Terminus(home=isolated_home) as t:
        bad = {"from": "smollm2", "parameters": {"temperature": 9.0}}
        with pytest.raises(InvalidParameterError, match="temperature"):
            t.models.create("hot", bad)
        with pytest.raises(InvalidParameterError, match="unknown key"):
            t.models.create("x", {"from": "smollm2", "sytem": "typo"})
        with pytest.raises(InvalidParameterError, match="built-in"):
            t.models.create("smollm2-135m-instruct", {"from": "smollm2"})
        not_adapter = tmp_path / "fake.gguf"
        not_adapter.write_bytes(b"nope")
        with pytest.raises(InvalidModelFileError):
            t.models.create("y", {"from": "smollm2", "adapter": str(not_adapter)})
    assert not (isolated_home / "cards" / "y.toml").exists()
    missing = tmp_path / "missing.toml"
    result = CliRunner().invoke(cli, ["create", "z", "-f", str(missing)])
    assert result.exit_code == 2  # click: the file does not exist
    unknown_base = tmp_path / "r.toml"
    unknown_base.write_text('from = "no-such-model"\n')
    result = CliRunner().invoke(cli, ["create", "z", "-f", str(unknown_base)])
    assert result.exit_code == 3, result.output


def test_running_a_catalog_name_not_pulled_says_to_pull(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-m", "qwen3:4b", "hi"])
    assert result.exit_code == 3
    assert "terminus models pull qwen3:4b" in result.output
