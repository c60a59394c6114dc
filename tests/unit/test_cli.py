"""The CLI as a user drives it: exit codes, one-line errors, JSON output (fake engine)."""

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
def fake_model(isolated_home: Path, tmp_path: Path) -> str:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"fake weights")
    card = ModelCard(
        id="fake-chat",
        capability="chat",
        engine="fake",
        format="bin",
        files=(
            ModelFile(
                name="weights.bin", sha256=hashlib.sha256(b"fake weights").hexdigest(), size=12
            ),
        ),
        sources=(LocalSource(paths={"weights.bin": str(weights)}),),
        defaults={"replies": ["The sky is blue because of Rayleigh scattering."]},
        user_added=True,
    )
    Catalog(isolated_home / "cards").save_user_card(card)
    return card.id


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_run_streams_the_answer(fake_model: str) -> None:
    code, out, err = invoke("run", "-m", fake_model, "Why is the sky blue?")
    assert code == 0, err
    assert out.strip() == "The sky is blue because of Rayleigh scattering."


def test_run_reads_stdin_and_prints_json_events(fake_model: str) -> None:
    code, out, _ = invoke("run", "-m", fake_model, "--json", "-n", "3", input="hello")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["content"] * 3 + ["stats", "done"]
    assert events[-1]["stop_reason"] == "length"


def test_unknown_model_is_one_line_and_exit_3(fake_model: str) -> None:
    code, out, err = invoke("run", "-m", "fake-chta", "hi")
    assert code == 3
    assert err.startswith("error: unknown model 'fake-chta'")
    assert "fake-chat" in err  # the did-you-mean hint
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags", [["-t", "-1"], ["--top-p", "2"], ["-n", "0"], ["--stop", ""], ["--seed", "-3"]]
)
def test_invalid_generation_flags_exit_9(fake_model: str, flags: list[str]) -> None:
    code, _, err = invoke("run", "-m", fake_model, *flags, "hi")
    assert code == 9, err
    assert err.startswith("error: invalid request")


def test_invalid_schema_exit_9(fake_model: str) -> None:
    code, _, err = invoke("run", "-m", fake_model, "--schema", '{"type": "objectx"}', "hi")
    assert code == 9
    assert "schema" in err


def test_models_add_rejects_non_gguf_with_exit_4(isolated_home: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("this is not a model\n" * 10)
    code, _, err = invoke("models", "add", str(bogus))
    assert code == 4
    assert "not a GGUF" in err
    assert not (isolated_home / "blobs").exists() or not any((isolated_home / "blobs").iterdir())
    assert not (isolated_home / "cards").exists()


def test_models_list_pull_verify_rm(fake_model: str, isolated_home: Path) -> None:
    code, out, _ = invoke("models", "list", "--json")
    row = next(r for r in json.loads(out) if r["id"] == fake_model)
    assert row["cached"] is False
    assert invoke("models", "pull", fake_model)[0] == 0
    code, out, _ = invoke("models", "verify", fake_model)
    assert code == 0 and out.startswith("ok ")
    blob = isolated_home / "blobs" / hashlib.sha256(b"fake weights").hexdigest()
    blob.chmod(0o644)
    blob.write_bytes(b"fake weightz")
    code, out, err = invoke("models", "verify", fake_model)
    assert code == 5 and "BAD" in out and "corrupt" in out
    assert not blob.exists()
    assert invoke("models", "pull", fake_model)[0] == 0
    code, out, _ = invoke("models", "rm", fake_model)
    assert code == 0 and not blob.exists()


def test_offline_pull_of_uncached_http_model_exit_6(isolated_home: Path) -> None:
    card = ModelCard(
        id="remote-only",
        capability="chat",
        engine="fake",
        files=(ModelFile(name="w.bin", sha256="0" * 64, size=1),),
        sources=({"type": "http", "urls": {"w.bin": "http://127.0.0.1:9/w.bin"}},),  # type: ignore[arg-type]
        user_added=True,
    )
    Catalog(isolated_home / "cards").save_user_card(card)
    code, _, err = invoke("--offline", "models", "pull", "remote-only")
    assert code == 6
    assert err.startswith("error: ")


def test_doctor_json_lists_engines(isolated_home: Path) -> None:
    code, out, _ = invoke("doctor", "--json")
    assert code == 0
    report = json.loads(out)
    assert "fake" not in report["engines"]  # the test suite's engine is nothing to a user
    assert "llamacpp" in report["engines"]
    assert report["default_model"]["id"] == "smollm2-135m-instruct"


def test_chat_keeps_history(fake_model: str) -> None:
    from terminus.engines.fake import FakeEngine

    before = len(FakeEngine.calls)
    code, out, err = invoke("chat", "-m", fake_model, input="first\nsecond\n/exit\n")
    assert code == 0, err
    calls = FakeEngine.calls[before:]
    assert len(calls) == 2
    roles = [m.role for m in calls[1].messages]
    assert roles == ["user", "assistant", "user"]
    assert calls[1].messages[0].content == "first"
