"""Speculative decoding settings without a model: which proposer a load asks for, the
refusals, and the settings built on a real ``xllamacpp.CommonParams``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from terminus.cli.generate import load_extras
from terminus.cli.main import cli
from terminus.engines.base import LoadOptions
from terminus.engines.llamacpp_params import ParamsRecorder, build_params
from terminus.engines.llamacpp_speculative import (
    DEFAULT_DRAFT_MAX,
    check_draft_tokenizer,
    configure_speculative,
    speculative_plan,
)
from terminus.errors import InvalidParameterError
from terminus.models.card import ModelCard, ModelFile
from terminus.models.gguf import GGUFHeader


def make_card(**defaults: Any) -> ModelCard:
    return ModelCard(
        id="big",
        capability="chat",  # type: ignore[arg-type]
        engine="llamacpp",
        format="gguf",
        files=(ModelFile(name="m.gguf", sha256="0" * 64, size=1),),
        defaults=defaults,
    )


def test_no_setting_means_no_speculation() -> None:
    assert speculative_plan(make_card(), LoadOptions()) is None
    assert (
        speculative_plan(make_card(speculative="ngram"), LoadOptions(extra={"speculative": "off"}))
        is None
    )


def test_card_default_and_load_option() -> None:
    plan = speculative_plan(make_card(draft_model="small"), LoadOptions())
    assert plan is not None and (plan.mode, plan.draft_model) == ("draft", "small")
    assert plan.draft_max == DEFAULT_DRAFT_MAX
    # a load option overrides the card: n-gram lookup needs no draft model
    plan = speculative_plan(
        make_card(draft_model="small"), LoadOptions(extra={"speculative": "ngram"})
    )
    assert plan is not None and (plan.mode, plan.draft_model) == ("ngram", None)
    plan = speculative_plan(make_card(), LoadOptions(extra={"draft_model": "tiny", "draft_max": 3}))
    assert plan is not None and (plan.mode, plan.draft_model, plan.draft_max) == (
        "draft",
        "tiny",
        3,
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"speculative": "fast"}, "one of off, ngram, draft"),
        ({"speculative": "draft"}, "needs draft_model"),
        ({"speculative": "ngram", "draft_max": 0}, "draft_max"),
        ({"draft_model": "small", "draft_max": "8"}, "draft_max"),
    ],
)
def test_bad_settings_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        speculative_plan(make_card(), LoadOptions(extra=extra))


def _header(**tokenizer: Any) -> GGUFHeader:
    return GGUFHeader(version=3, metadata=tokenizer, tensors=[], data_offset=0, file_size=0)


def test_a_draft_must_share_the_tokenizer() -> None:
    qwen = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": 151936,
    }
    check_draft_tokenizer(_header(**qwen), _header(**qwen), "big", "small")
    other = {**qwen, "tokenizer.ggml.tokens": 49152}
    with pytest.raises(InvalidParameterError, match="tokenizers differ"):
        check_draft_tokenizer(_header(**qwen), _header(**other), "big", "small")


def test_settings_build_real_params(tmp_path: Path) -> None:
    recorder: Any = ParamsRecorder()
    plan = speculative_plan(make_card(), LoadOptions(extra={"draft_model": "s", "draft_max": 5}))
    assert plan is not None
    configure_speculative(recorder, plan, tmp_path / "draft.gguf", threads=2)
    params = build_params(recorder.assignments)
    assert [t.name for t in params.speculative.types] == ["COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE"]
    assert params.speculative.draft.mparams.path == str(tmp_path / "draft.gguf")
    assert params.speculative.draft.n_max == 5
    assert params.speculative.draft.p_min == pytest.approx(0.75)
    assert params.speculative.draft.cpuparams.n_threads == 2

    recorder = ParamsRecorder()
    plan = speculative_plan(make_card(speculative="ngram"), LoadOptions())
    assert plan is not None
    configure_speculative(recorder, plan, None, threads=1)
    params = build_params(recorder.assignments)
    assert [t.name for t in params.speculative.types] == ["COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE"]
    assert params.speculative.ngram_simple.size_n == 3


def test_cli_flags_become_load_options() -> None:
    kwargs = {"speculative": None, "draft_model": "qwen", "draft_max": 4, "context_length": 512}
    assert load_extras(kwargs) == {"draft_model": "qwen", "draft_max": 4}
    assert load_extras({**kwargs, "kv_disk_cache": False}) == load_extras(kwargs)
    assert load_extras({"kv_disk_cache": True}) == {"kv_disk_cache": True}
    result = CliRunner().invoke(cli, ["run", "--speculative", "fast", "hi"])
    assert result.exit_code == 2 and "fast" in result.output
