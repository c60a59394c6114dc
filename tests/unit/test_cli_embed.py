"""``terminus embed`` on the fake embedding engine: text and JSON output, stdin, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from terminus.cli.main import cli
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.catalog import Catalog


@pytest.fixture()
def fake_embed(isolated_home: Path, tmp_path: Path) -> str:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"fake embedding weights")
    card = ModelCard(
        id="fake-embed",
        capability="embed",  # type: ignore[arg-type]
        engine="fake",
        format="bin",
        files=(
            ModelFile(
                name="weights.bin",
                sha256=hashlib.sha256(b"fake embedding weights").hexdigest(),
                size=22,
            ),
        ),
        sources=(LocalSource(paths={"weights.bin": str(weights)}),),
        defaults={"dimensions": 8},
        user_added=True,
    )
    Catalog(isolated_home / "cards").save_user_card(card)
    return card.id


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_prints_dimensions_and_first_values(fake_embed: str) -> None:
    code, out, err = invoke("embed", "-m", fake_embed, "red apples", "green apples")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("fake-embed: 2 vectors of 8 dimensions, 4 tokens")
    assert lines[1].startswith("[0] ") and lines[1].endswith("red apples")
    assert lines[2].startswith("[1] ") and lines[2].endswith("green apples")
    assert len(lines[1].split()) == 1 + 6 + 1 + 2  # index, 6 values, the ellipsis, the text


def test_json_has_every_vector(fake_embed: str) -> None:
    code, out, _ = invoke("embed", "-m", fake_embed, "--json", "one two", "three")
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "fake-embed" and data["dimensions"] == 8
    assert data["prompt_tokens"] == 3
    assert [d["text"] for d in data["data"]] == ["one two", "three"]
    vectors = [d["embedding"] for d in data["data"]]
    assert all(len(v) == 8 for v in vectors)
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-5


def test_no_normalize_and_stdin_lines(fake_embed: str) -> None:
    code, out, _ = invoke(
        "embed", "-m", fake_embed, "--json", "--no-normalize", input="two two\n\nthree\n"
    )
    assert code == 0
    data = json.loads(out)
    assert [d["text"] for d in data["data"]] == ["two two", "three"]
    assert sum(data["data"][0]["embedding"]) == 2.0


def test_nothing_to_embed_is_a_usage_error(fake_embed: str) -> None:
    code, _, err = invoke("embed", "-m", fake_embed, input="\n  \n")
    assert code == 2 and "nothing to embed" in err


def test_chat_model_cannot_embed(fake_embed: str) -> None:
    code, _, err = invoke("embed", "-m", "smollm2", "hello")
    assert code == 9
    assert err.startswith("error: smollm2-135m-instruct is a chat model")
