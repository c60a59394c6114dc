"""Fine-tuning data, quantization rules and formats, adapter checks: fast, no model."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from click.testing import CliRunner

from terminus.cli.main import cli
from terminus.engines.llamacpp_lora import BASE_SHA256_KEY, check_adapter
from terminus.engines.llamacpp_native import quantize_rows
from terminus.errors import (
    AdapterMismatchError,
    DatasetError,
    UnknownQuantizationError,
    UnsupportedArchitectureError,
)
from terminus.finetune.data import check_trainable, read_jsonl, split
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard, ModelFile
from terminus.quantize.imatrix import load_imatrix, save_imatrix
from terminus.quantize.rules import scheme, tensor_type, use_more_bits
from terminus.quantize.writer import quantize_file


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CHAT = json.dumps(
    {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ]
    }
)


def test_dataset_reads_chat_and_text(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [CHAT, "", json.dumps({"text": "plain words"})])
    examples = read_jsonl(path)
    assert [e.is_chat for e in examples] == [True, False]
    assert examples[0].has_assistant_turn()


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), "role 'robot'"),
        (json.dumps({"messages": [{"role": "user"}]}), "no text 'content'"),
        (json.dumps({"prompt": "x"}), "expected a 'messages' list"),
        (json.dumps([1, 2]), "expected a JSON object"),
    ],
)
def test_malformed_line_is_reported_with_its_number(tmp_path: Path, bad: str, needle: str) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [CHAT, CHAT, bad])
    with pytest.raises(DatasetError) as info:
        read_jsonl(path)
    assert "line 3" in str(info.value) and needle in str(info.value)
    assert info.value.exit_code == 40


def test_dataset_without_assistant_turns_is_refused(tmp_path: Path) -> None:
    only_user = json.dumps({"messages": [{"role": "user", "content": "Hi"}]})
    examples = read_jsonl(_write_jsonl(tmp_path / "d.jsonl", [only_user, only_user]))
    with pytest.raises(DatasetError, match="no assistant turns"):
        check_trainable(examples, assistant_only=True, name="d.jsonl")
    check_trainable(examples, assistant_only=False, name="d.jsonl")  # training on all tokens


def test_split_is_seeded_and_keeps_training_data(tmp_path: Path) -> None:
    examples = read_jsonl(_write_jsonl(tmp_path / "d.jsonl", [CHAT] * 10))
    train, val = split(examples, 0.3, seed=1)
    assert (len(train), len(val)) == (7, 3)
    assert split(examples, 0.99, seed=1)[0]  # never empty


def test_unknown_quantization_type() -> None:
    with pytest.raises(UnknownQuantizationError, match="Q9_9"):
        scheme("Q9_9")


def test_q4_k_m_tensor_rules_follow_llama_cpp() -> None:
    plan = scheme("q4_k_m")
    n = 30
    assert [i for i in range(n) if use_more_bits(i, n)] == [
        0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29
    ]  # fmt: skip

    def kind(name: str, cols: int, has_output: bool = False) -> str:
        return tensor_type(plan, name, (64, cols), n, has_output=has_output)

    assert kind("blk.4.ffn_down.weight", 1536) == "Q4_K"
    assert kind("blk.5.ffn_down.weight", 1536) == "Q6_K"
    assert kind("blk.5.attn_v.weight", 576) == "Q8_0"  # Q6_K needs 256-multiple rows
    assert kind("blk.4.attn_q.weight", 576) == "Q5_0"  # Q4_K fallback
    assert kind("blk.4.attn_q.weight", 512) == "Q4_K"
    assert kind("token_embd.weight", 512) == "Q6_K"  # tied: it is the output matrix
    assert kind("token_embd.weight", 512, has_output=True) == "Q4_K"
    assert tensor_type(plan, "blk.0.attn_norm.weight", (576,), n, has_output=False) == "F32"
    assert tensor_type(scheme("Q8_0"), "output.weight", (64, 512), n, has_output=True) == "Q8_0"


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_0", "Q4_1", "Q5_0"])
def test_ggml_quantizer_matches_the_gguf_reference_byte_for_byte(kind: str) -> None:
    rows = np.random.default_rng(7).standard_normal((16, 512)).astype(np.float32)
    ours = quantize_rows(rows, kind)
    reference = gguf.quants.quantize(rows, gguf.GGMLQuantizationType[kind]).tobytes()
    assert ours == reference


def test_importance_changes_k_quant_and_lowers_weighted_error() -> None:
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((32, 256)).astype(np.float32)
    importance = np.where(np.arange(256) < 16, 1000.0, 0.01).astype(np.float32)
    plain = quantize_rows(rows, "Q4_K")
    weighted = quantize_rows(rows, "Q4_K", importance)
    assert plain != weighted

    def error(data: bytes) -> float:
        back = gguf.quants.dequantize(
            np.frombuffer(data, dtype=np.uint8).reshape(32, -1), gguf.GGMLQuantizationType.Q4_K
        )
        return float((((back - rows) ** 2) * importance).sum())

    assert error(weighted) < error(plain)


def test_imatrix_round_trip(tmp_path: Path) -> None:
    matrix = {"blk.0.attn_q.weight": np.arange(8, dtype=np.float32) + 1}
    save_imatrix(matrix, tmp_path / "m.imatrix", dataset="unit", chunks=1)
    loaded = load_imatrix(tmp_path / "m.imatrix")
    np.testing.assert_array_equal(loaded["blk.0.attn_q.weight"], matrix["blk.0.attn_q.weight"])
    assert not list(tmp_path.glob(".*partial"))


def _tiny_gguf(path: Path, arch: str, **meta: str) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in meta.items():
        writer.add_string(key, value)
    writer.add_uint32(f"{arch}.block_count", 1)
    writer.add_tensor("blk.0.attn_q.weight", np.ones((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_quantizing_an_unsupported_architecture_is_refused(tmp_path: Path) -> None:
    source = _tiny_gguf(tmp_path / "g.gguf", "gemma3")
    with pytest.raises(UnsupportedArchitectureError, match="gemma3"):
        quantize_file(source, tmp_path / "out.gguf", scheme("Q8_0"))
    assert not list(tmp_path.glob("*out*"))


def _adapter_card(base_sha: str, tmp_path: Path, trained_on: str) -> tuple[ModelCard, ModelFiles]:
    base = _tiny_gguf(tmp_path / "base.gguf", "llama")
    adapter = _tiny_gguf(
        tmp_path / "adapter.gguf",
        "llama",
        **{"general.type": "adapter", "adapter.type": "lora", BASE_SHA256_KEY: trained_on},
    )
    card = ModelCard(
        id="a",
        capability="chat",
        engine="llamacpp",
        files=(
            ModelFile(name="base.gguf", sha256=base_sha),
            ModelFile(name="adapter.gguf", sha256="b" * 64),
        ),
        defaults={"lora_adapter": "adapter.gguf"},
    )
    return card, ModelFiles(tmp_path, {"base.gguf": base, "adapter.gguf": adapter})


def test_adapter_on_another_base_is_refused(tmp_path: Path) -> None:
    card, files = _adapter_card("a" * 64, tmp_path, trained_on="c" * 64)
    with pytest.raises(AdapterMismatchError) as info:
        check_adapter(card, files)
    assert info.value.exit_code == 42


def test_adapter_on_its_own_base_is_accepted(tmp_path: Path) -> None:
    card, files = _adapter_card("a" * 64, tmp_path, trained_on="a" * 64)
    assert check_adapter(card, files) == str(files.paths["adapter.gguf"])


def test_cli_unknown_type_is_one_line_and_writes_nothing(isolated_home: Path) -> None:
    result = CliRunner().invoke(cli, ["quantize", "smollm2", "--type", "Q9_9"])
    assert result.exit_code == 43
    assert result.output.strip().startswith("error: unknown quantization type 'Q9_9'")
    assert not (isolated_home / "cards").exists() or not list((isolated_home / "cards").iterdir())


def test_cli_unsupported_architecture_fails_before_any_fetch(
    isolated_home: Path, tmp_path: Path
) -> None:
    data = _write_jsonl(tmp_path / "d.jsonl", [CHAT])
    for args in (
        ["finetune", "gemma-3-270m", str(data)],
        ["quantize", "gemma-3-270m", "-q", "Q8_0"],
    ):
        result = CliRunner().invoke(cli, ["--offline", *args])
        assert result.exit_code == 41, result.output
        assert "gemma3" in result.output
    assert not (isolated_home / "blobs").exists() or not list((isolated_home / "blobs").iterdir())


async def test_async_client_runs_the_same_checks(isolated_home: Path) -> None:
    from terminus import AsyncTerminus

    async with AsyncTerminus() as t:
        with pytest.raises(UnknownQuantizationError):
            await t.quantize("smollm2", "Q9_9")


def test_checkpoints_latest_mismatch_corrupt_and_clear(tmp_path: Path) -> None:
    from terminus.errors import CheckpointError
    from terminus.finetune.checkpoint import (
        clear_checkpoints,
        latest_checkpoint,
        load_checkpoint,
        save_checkpoint,
    )

    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"fingerprint": "run-a", "losses": [0.5] * step})
    last = latest_checkpoint(tmp_path)
    assert last is not None and last.name == "checkpoint-000003.pt"
    assert len(list(tmp_path.glob("checkpoint-*.pt"))) == 2  # the last two are kept
    assert load_checkpoint(last, "run-a")["step"] == 3
    with pytest.raises(CheckpointError, match="other data or options"):
        load_checkpoint(last, "run-b")
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(last, "run-a")
    clear_checkpoints(tmp_path)
    assert latest_checkpoint(tmp_path) is None
