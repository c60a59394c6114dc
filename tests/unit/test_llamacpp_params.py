"""llama.cpp load settings without a model: written in the host on a recorder, built on a
real ``xllamacpp.CommonParams`` as the worker builds them; the prompt cache's bound."""

from __future__ import annotations

from typing import Any

import pytest

from terminus.engines.base import LoadOptions
from terminus.engines.llamacpp import DEFAULT_PROMPT_CACHE_MIB, prompt_cache_mib
from terminus.engines.llamacpp_params import AtLeast, Native, ParamsRecorder, build_params
from terminus.errors import InvalidParameterError
from terminus.models.card import ModelCard, ModelFile


def test_recorded_settings_build_real_params() -> None:
    recorder: Any = ParamsRecorder()
    recorder.model.path = "/models/m.gguf"
    recorder.cpuparams.n_threads = 3
    recorder.n_ctx = 4096
    recorder.cache_ram_mib = 64
    recorder.n_batch = AtLeast(16)  # below the default: the default stays
    recorder.pooling_type = Native("llama_pooling_type.LLAMA_POOLING_TYPE_CLS")
    recorder.lora_adapters = [Native("CommonAdapterLoraInfo", ("/models/a.gguf", 0.5))]
    assert recorder.cache_ram_mib == 64  # reads back what was set
    params = build_params(recorder.assignments)
    assert params.model.path == "/models/m.gguf"
    assert params.cpuparams.n_threads == 3
    assert params.n_ctx == 4096 and params.cache_ram_mib == 64
    assert params.n_batch == 2048
    assert int(params.pooling_type) == 2
    assert params.lora_adapters[0].path == "/models/a.gguf"


def make_card(**defaults: Any) -> ModelCard:
    return ModelCard(
        id="c",
        capability="chat",  # type: ignore[arg-type]
        engine="llamacpp",
        files=(ModelFile(name="m.gguf", size=1, sha256="0" * 64),),
        defaults=defaults,
    )


def test_the_prompt_cache_bound_comes_from_option_card_or_default() -> None:
    card = make_card()
    assert prompt_cache_mib(card, LoadOptions()) == DEFAULT_PROMPT_CACHE_MIB
    assert prompt_cache_mib(make_card(prompt_cache_mib=64), LoadOptions()) == 64
    options = LoadOptions(extra={"prompt_cache_mib": 0})
    assert prompt_cache_mib(make_card(prompt_cache_mib=64), options) == 0
    for bad in ("lots", -1, 1.5, True):
        with pytest.raises(InvalidParameterError, match="prompt_cache_mib"):
            prompt_cache_mib(card, LoadOptions(extra={"prompt_cache_mib": bad}))
