"""A real llama.cpp vision projector for SmolLM2-135M, built with ``globalmm``.

No vision-language model ships in a package registry, so the tests give the shipped
SmolLM2 eyes: ``globalmm.build_mmproj`` packs a SigLIP-shaped vision tower and a
projection matrix ``W`` into an ``mmproj.gguf`` of llama.cpp's ``gemma3`` projector
type. globalmm fits ``W`` against a real SigLIP it downloads; offline, the tower here is
built in place instead, small and with set weights: a 16x16 patch's embedding is its
mean red, green and blue (plus a constant), and ``W`` is solved so that a patch of pure
red, green or blue comes out as SmolLM2's own embedding of the word " red", " green" or
" blue". The model then literally reads colour words where the image is; that is all
this projector knows (no shapes, no text), and what a real VLM would say about a
photo cannot be checked here.

Each image is 16 embeddings: 128x128 pixels in 16x16 patches (8x8), pooled 2x2.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

IMAGE_SIZE = 128
PATCH = 16
MERGE = 2
HIDDEN = 32
#: Embeddings per image: (128 / 16 / 2) ** 2.
IMAGE_TOKENS = (IMAGE_SIZE // PATCH // MERGE) ** 2
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def _word_embeddings(llm: Path, words: list[str]) -> np.ndarray:
    import gguf

    reader = gguf.GGUFReader(str(llm))
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode() for i in field.data]
    table = next(t for t in reader.tensors if t.name == "token_embd.weight")
    width = int(table.shape[0])
    rows = gguf.quants.dequantize(table.data, table.tensor_type).reshape(-1, width)
    return np.stack([rows[tokens.index("Ġ" + w)] for w in words])  # "Ġ": a leading space


def _patch_feature(rgb: tuple[int, int, int]) -> np.ndarray:
    """What llama.cpp computes for a uniform patch: embed, layer norm, pool, RMS norm."""
    v = np.zeros(HIDDEN)
    v[:3] = (np.asarray(rgb) / 255 - 0.5) / 0.5  # SigLIP's mean/std of 0.5
    v[3] = 1.0  # the patch embedding's bias
    v = (v - v.mean()) / np.sqrt(v.var() + 1e-6)
    return v / np.sqrt((v**2).mean() + 1e-6)


def _save_tower(folder: Path) -> None:
    """A SigLIP model folder (no hidden layers) that ``build_mmproj`` loads offline."""
    import sentencepiece as spm
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    text = {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32}
    text |= {"num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16}
    text |= {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    vision = {"hidden_size": HIDDEN, "intermediate_size": 64, "num_hidden_layers": 0}
    vision |= {"num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": PATCH}
    torch.manual_seed(0)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    tower = model.vision_model
    with torch.no_grad():
        patch = tower.embeddings.patch_embedding
        patch.weight.zero_()
        patch.bias.zero_()
        patch.bias[3] = 1.0
        for channel in range(3):  # hidden[c] = the patch's mean of colour channel c
            patch.weight[channel, channel] = 1.0 / (PATCH * PATCH)
        tower.embeddings.position_embedding.weight.zero_()
        tower.post_layernorm.weight.fill_(1.0)
        tower.post_layernorm.bias.zero_()
    model.save_pretrained(folder)
    # build_mmproj reads the image mean/std from a SigLIP processor, which needs a tokenizer.
    spiece = io.BytesIO()
    words = " ".join(["red green blue picture image colour square"] * 8)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([words] * 20),
        model_writer=spiece,
        vocab_size=30,
        minloglevel=2,
        hard_vocab_limit=False,
    )
    (folder / "spiece.model").write_bytes(spiece.getvalue())
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    SiglipProcessor(
        image_processor=SiglipImageProcessor(size=size),
        tokenizer=SiglipTokenizer(vocab_file=str(folder / "spiece.model")),
    ).save_pretrained(folder)


def build_projector(llm: Path, out_dir: Path) -> Path:
    """``out_dir/smollm2-colours-mmproj.gguf`` for the SmolLM2 GGUF at ``llm``."""
    import contextlib

    import torch
    from globalmm.build_mmproj import build_mmproj

    out_dir.mkdir(parents=True, exist_ok=True)
    tower = out_dir / "tower"
    tower.mkdir(exist_ok=True)
    _save_tower(tower)
    features = np.stack([_patch_feature(rgb) for rgb in COLOURS.values()])
    targets = _word_embeddings(llm, list(COLOURS))
    w, *_ = np.linalg.lstsq(features, targets, rcond=None)  # exact: 3 colours, 32 dims
    out = out_dir / "smollm2-colours-mmproj.gguf"
    with contextlib.redirect_stdout(io.StringIO()):  # globalmm prints its progress
        build_mmproj(
            torch.tensor(w, dtype=torch.float32),
            out,
            siglip_name=str(tower),
            n_merge=MERGE,
            weight_dtype=np.float32,
        )
    (out_dir / "projector.json").write_text(json.dumps({"image_tokens": IMAGE_TOKENS}))
    return out
