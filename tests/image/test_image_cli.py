"""``terminus image`` on the built SDXS model: files written, stats printed, errors typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from imagekit import MODEL, engine_threads

from terminus.cli.main import cli
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog


@pytest.fixture(scope="module")
def cli_home(image_home: Path, sdxs: ModelCard) -> Iterator[Path]:
    """The shared home, with the test model saved as a user card so the CLI finds it."""
    catalog = Catalog(image_home / "cards")
    catalog.save_user_card(sdxs)
    yield image_home
    catalog.delete_user_card(sdxs.id)


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(home), "image", *args])
    return result.exit_code, result.stdout, result.stderr


def test_writes_the_images_and_reports_the_seed(cli_home: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out" / "cat.png"
    small = ["-m", MODEL, "-W", "64", "-H", "64", "--threads", str(engine_threads())]
    code, stdout, stderr = run(cli_home, "a cat", *small, "--seed", "5", "-n", "2", "-o", str(out))
    assert code == 0, stderr
    first, second = tmp_path / "out" / "cat-1.png", tmp_path / "out" / "cat-2.png"
    assert f"wrote {first}, {second} (64x64, seed 5, 1 step" in stdout
    with Image.open(first) as image:
        assert (image.mode, image.size) == ("RGB", (64, 64))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat-1.png", "cat-2.png"]

    code, stdout, _ = run(cli_home, "a cat", *small, "--seed", "5", "--json", "-o", str(out))
    assert code == 0
    stats = json.loads(stdout)
    assert (stats["seed"], stats["files"], stats["threads"]) == (5, [str(out)], engine_threads())


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["-m", MODEL, "-W", "100"], 9, "multiple of 8"),
        (["-m", "no-such-model"], 3, "no-such-model"),
        (["-m", MODEL, "-o", "{tmp}/out.txt"], 2, "-o"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    cli_home: Path, tmp_path: Path, args: list[str], exit_code: int, message: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.png")]
    code, _, stderr = run(cli_home, "a cat", *args)
    assert code == exit_code
    assert message in stderr
    assert not list(tmp_path.iterdir())  # nothing written
