"""The run hint: what `terminus run` loaded, read back only for the same model file and key."""

from __future__ import annotations

import os
from pathlib import Path

from terminus.cli.early import hint_key, read_hint, write_hint
from terminus.engines.llamacpp_params import (
    AtLeast,
    Native,
    assignments_from_json,
    assignments_to_json,
)
from terminus.engines.llamacpp_proxy import same_load


def _assignments(model: Path) -> list:  # type: ignore[type-arg]
    return [
        ("model.path", str(model)),
        ("n_ctx", 8192),
        ("pooling_type", Native("llama_pooling_type.LLAMA_POOLING_TYPE_MEAN")),
        ("lora_adapters", [Native("CommonAdapterLoraInfo", ("/a.gguf", 1.0))]),
        ("n_batch", AtLeast(512)),
        ("api_keys", ["secret"]),
    ]


def test_assignments_survive_json() -> None:
    assignments = _assignments(Path("/m.gguf"))
    assert assignments_from_json(assignments_to_json(assignments)) == assignments


def test_a_hint_is_read_back_for_the_same_key_and_file_only(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" * 10)
    key = hint_key("smollm2")
    write_hint(tmp_path, key, _assignments(model))
    assert "secret" not in (tmp_path / "cli" / "run-hint.json").read_text()
    read = read_hint(tmp_path, key)
    assert read is not None and read[:5] == _assignments(model)[:5]
    (name, keys) = read[5]
    assert name == "api_keys" and keys != ["secret"] and len(keys[0]) > 20  # a fresh key
    assert read_hint(tmp_path, hint_key("qwen")) is None
    os.utime(model, ns=(0, 0))  # the file changed since
    assert read_hint(tmp_path, key) is None
    (tmp_path / "cli" / "run-hint.json").write_text("{not json")
    assert read_hint(tmp_path, key) is None


def test_a_load_sent_ahead_matches_but_for_its_key() -> None:
    wanted = _assignments(Path("/m.gguf"))
    ahead = [*wanted[:5], ("api_keys", ["other"])]
    assert same_load(ahead, wanted)
    assert not same_load([*wanted[:1], ("n_ctx", 512), *wanted[2:]], wanted)
    with_snapshots = [*wanted, ("slot_save_path", "/kv")]
    assert not same_load([*ahead, ("slot_save_path", "/kv")], with_snapshots)  # its key matters
