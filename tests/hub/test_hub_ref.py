"""Hub references and the choice of files: pure logic, no network."""

from __future__ import annotations

import pytest

from terminus.errors import InvalidParameterError, RemoteModelNotFoundError
from terminus.models.hub_ref import HubRef, choose_gguf, parse_ref, quant_label

GiB = 1 << 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf://Qwen/Qwen3-0.6B-GGUF", HubRef("Qwen/Qwen3-0.6B-GGUF")),
        ("hf://Qwen/Qwen3-0.6B-GGUF:q8_0", HubRef("Qwen/Qwen3-0.6B-GGUF", quant="Q8_0")),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            HubRef("bartowski/Llama-3.2-1B-Instruct-GGUF", quant="Q4_K_M"),
        ),
        ("hf://o/r/sub/model-Q4_0.gguf", HubRef("o/r", path="sub/model-Q4_0.gguf")),
        ("hf://o/r@abc123:Q6_K", HubRef("o/r", revision="abc123", quant="Q6_K")),
        ("https://huggingface.co/o/r/resolve/main/m.gguf", HubRef("o/r", "main", path="m.gguf")),
    ],
)
def test_parse_ref(text: str, expected: HubRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize("text", ["hf://onlyowner", "hf://o/r/../x.gguf", "qwen3", "hf://o/r r"])
def test_bad_refs_are_typed_errors(text: str) -> None:
    with pytest.raises(InvalidParameterError):
        parse_ref(text)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Qwen3-0.6B-Q4_K_M.gguf", "Q4_K_M"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("Qwen_Qwen3-8B-IQ4_XS.gguf", "IQ4_XS"),
        ("dir/model-f16-00002-of-00003.gguf", "F16"),
        ("mmproj-model-f16.gguf", "F16"),
        ("unsloth.Q8_0.gguf", "Q8_0"),
        ("model.gguf", None),
    ],
)
def test_quant_label(name: str, label: str | None) -> None:
    assert quant_label(name) == label


REPO = {
    "M-Q8_0.gguf": 8 * GiB,
    "M-Q4_K_M.gguf": 4 * GiB,
    "M-Q2_K.gguf": 2 * GiB,
    "mmproj-M-f16.gguf": GiB // 2,
    "mmproj-M-Q8_0.gguf": GiB // 4,
    "README.md": 10,
}


def test_default_is_q4_k_m_and_projector_follows() -> None:
    choice = choose_gguf(HubRef("o/r"), REPO)
    assert choice.parts == ("M-Q4_K_M.gguf",)
    assert choice.projector == "mmproj-M-f16.gguf"  # no Q4_K_M projector: F16
    assert choose_gguf(HubRef("o/r", quant="Q8_0"), REPO).projector == "mmproj-M-Q8_0.gguf"


def test_without_q4_k_m_the_best_that_fits_wins() -> None:
    files = {k: v for k, v in REPO.items() if "Q4_K_M" not in k}
    assert choose_gguf(HubRef("o/r"), files, lambda size: size <= 9 * GiB).parts == ("M-Q8_0.gguf",)
    assert choose_gguf(HubRef("o/r"), files, lambda size: size <= 3 * GiB).parts == ("M-Q2_K.gguf",)
    # nothing fits: the smallest, and the memory check at load time decides
    assert choose_gguf(HubRef("o/r"), files, lambda size: False).parts == ("M-Q2_K.gguf",)


def test_split_files_are_fetched_together_in_order() -> None:
    files = {
        "Q8_0/M-Q8_0-00002-of-00002.gguf": GiB,
        "Q8_0/M-Q8_0-00001-of-00002.gguf": GiB,
        "M-Q4_K_M-00001-of-00003.gguf": GiB,
        "M-Q4_K_M-00003-of-00003.gguf": GiB,  # part 2 missing: incomplete, never chosen
    }
    choice = choose_gguf(HubRef("o/r", quant="Q8_0"), files)
    assert choice.parts == ("Q8_0/M-Q8_0-00001-of-00002.gguf", "Q8_0/M-Q8_0-00002-of-00002.gguf")
    with pytest.raises(RemoteModelNotFoundError, match="no Q4_K_M"):
        choose_gguf(HubRef("o/r", quant="Q4_K_M"), files)
    by_path = choose_gguf(HubRef("o/r", path="Q8_0/M-Q8_0-00002-of-00002.gguf"), files)
    assert by_path.parts[0].endswith("00001-of-00002.gguf")


def test_missing_quant_names_what_exists() -> None:
    with pytest.raises(RemoteModelNotFoundError, match="no Q5_K_M") as info:
        choose_gguf(HubRef("o/r", quant="Q5_K_M"), REPO)
    assert info.value.hint == "available: Q8_0, Q4_K_M, Q2_K"
    with pytest.raises(RemoteModelNotFoundError, match="no GGUF"):
        choose_gguf(HubRef("o/r"), {"model.safetensors": 1})
