"""What the CLI prints and how it fails: listings, --json shapes, hints and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card

from terminus.cli.main import cli
from terminus.models.catalog import Catalog


@pytest.fixture()
def fake_models(isolated_home: Path, tmp_path: Path) -> Catalog:
    cards = Catalog(isolated_home / "cards")
    cards.save_user_card(fake_card(tmp_path / "w", "fake-chat", user_added=True))
    cards.save_user_card(
        fake_card(tmp_path / "w", "fake-embed", capability="embed", user_added=True)
    )
    return cards


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_models_list_shows_every_alias(isolated_home: Path) -> None:
    code, out, _ = invoke("models", "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    qwen = rows["qwen2.5-coder-0.5b-instruct"].split(None, 1)[1]
    assert qwen.startswith("qwen, ")  # every alias, the short name people type first
    assert "qwen2.5-0.5b-instruct" in qwen
    assert "smollm2" in rows["smollm2-135m-instruct"].split(None, 1)[1]


def test_models_verify_json(fake_models: Catalog) -> None:
    assert invoke("models", "pull", "fake-chat")[0] == 0
    code, out, _ = invoke("models", "verify", "fake-chat", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["model"] == "fake-chat" and row["file"] == "weights.bin" and row["ok"] is True
    assert isinstance(row["detail"], str)


def test_doctor_leaves_out_the_test_engine(isolated_home: Path) -> None:
    code, out, _ = invoke("doctor")
    assert code == 0
    engines = out.split("\nengines\n", 1)[1]
    assert "llamacpp" in engines
    assert "fake" not in engines


def test_a_missing_input_file_has_its_own_exit_code(isolated_home: Path) -> None:
    code, _, err = invoke("--offline", "transcribe", "nosuch.wav")
    assert code == 24  # an input file, not RAG's 19
    assert err.startswith("error: cannot read nosuch.wav")
    code, _, err = invoke("--offline", "ocr", "nosuch.png")
    assert code == 24


def test_capability_errors_use_the_right_article(fake_models: Catalog) -> None:
    code, _, err = invoke("run", "-m", "fake-embed", "hello")
    assert code == 9
    assert "fake-embed is an embedding model" in err


def test_quantize_type_flag_no_longer_looks_like_temperature(isolated_home: Path) -> None:
    code, _, err = invoke("quantize", "smollm2", "-q", "Q9_9")
    assert code == 43 and "unknown quantization type 'Q9_9'" in err
    code, _, err = invoke("quantize", "smollm2", "-t", "Q9_9")  # the old spelling still works
    assert code == 43 and "-t is now -q" in err
    code, _, err = invoke("quantize", "smollm2")
    assert code == 2 and "--type" in err


def test_image_model_not_added_points_at_image_models(isolated_home: Path) -> None:
    code, _, err = invoke("image", "a cat", "-m", "sdxs", "-o", str(isolated_home / "x.png"))
    assert code == 3
    assert "terminus image-models add PATH --preset sdxs-512-dreamshaper" in err
    assert "models list" not in err.replace("image-models list", "")
    code, _, err = invoke("image", "a cat", "-m", "no-such-image-model")
    assert code == 3 and "terminus image-models list" in err


def test_image_models_list_is_a_table_and_json(isolated_home: Path) -> None:
    code, out, _ = invoke("image-models", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["PRESET", "ALIASES", "SIZE", "DEFAULTS"]
    assert "{" not in out and "steps=1 cfg_scale=1.0" in out
    rows = json.loads(invoke("image-models", "list", "--json")[1])
    sdxs = next(r for r in rows if r["id"] == "sdxs-512-dreamshaper")
    assert sdxs["aliases"] == ["sdxs"] and sdxs["defaults"]["steps"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "list", "--json"),
        ("translate-models", "list", "--json"),
        ("peers", "list", "--json"),
        ("image-models", "list", "--json"),
        ("models", "list", "--json"),
    ],
)
def test_listings_print_a_json_array_of_objects(isolated_home: Path, args: tuple[str, ...]) -> None:
    code, out, err = invoke(*args)
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert all(isinstance(row, dict) for row in rows)


def test_every_data_command_has_json() -> None:
    import click

    wanted = {
        "run", "embed", "transcribe", "ocr", "speak", "translate", "image", "quantize",
        "compare", "doctor", "models list", "models info", "models verify", "rag ls",
        "rag search", "rag ask", "rag ingest", "eval run", "eval report", "eval compare",
        "eval list", "eval healthbench", "image-models list", "translate-models list",
        "peers list", "models pull", "pull",
    }  # fmt: skip
    found = set()

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            path = f"{prefix}{name}"
            if isinstance(command, click.Group):
                walk(command, path + " ")
            elif any("--json" in p.opts for p in command.params if isinstance(p, click.Option)):
                found.add(path)

    walk(cli, "")
    assert wanted <= found, wanted - found


def test_pull_and_models_pull_do_the_same(fake_models: Catalog) -> None:
    code, first, err = invoke("pull", "fake-chat")
    assert code == 0, err
    assert first.startswith("fake-chat: 1 file(s) verified")
    code, second, _ = invoke("models", "pull", "fake-chat")
    assert code == 0 and second == first
    code, out, _ = invoke("pull", "fake-chat", "--json")
    [row] = json.loads(out)
    assert row["id"] == "fake-chat" and Path(row["files"]["weights.bin"]).is_file()
    code, _, err = invoke("pull")
    assert code == 2 and "--from-peer" in err


def test_a_download_inside_run_says_so_without_a_terminal(fake_models: Catalog) -> None:
    code, out, err = invoke("run", "-m", "fake-chat", "hello there")
    assert code == 0
    assert out.strip() == "hello there"
    lines = err.splitlines()
    assert "copying weights.bin (336 B)…" in lines, err  # one line for the phase, no bar
    code, _, err = invoke("run", "-m", "fake-chat", "again")  # cached now: nothing to say
    assert code == 0 and err == ""
