"""A tiny CTranslate2 Transformer translation model, built from numpy weights in a few ms.

No NMT weights install from the registries, so the NMT engine is tested on a model
made here: SentencePiece word models for English and French, and a one-layer
Transformer whose weights are set by hand so that it translates word for word
through a small dictionary. The decoder's cross-attention really has to find source
position t at step t (queries and keys are one-hot positions) and carry that token's
embedding to the output projection, which maps it to the target word — so the test
exercises the real loading, tokenizing, decoding and detokenizing path, and the
output depends on the input.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from terminus.models.card import LocalSource, ModelCard, ModelFile

DICTIONARY = {
    "hello": "bonjour",
    "world": "monde",
    "world.": "monde.",
    "the": "le",
    "cat": "chat",
    "dog": "chien",
    "sleeps": "dort",
    "sleeps.": "dort.",
    "eats": "mange",
    "red": "rouge",
    "small": "petit",
    "good": "bon",
    "morning": "matin",
}
MAX_POSITIONS = 64
_SCALE = 10.0  # embeddings and positions
_SHARPNESS = 60.0  # query scale: attention on exactly one source position


def _train_spm(words: list[str], path: Path) -> list[str]:
    import sentencepiece as spm

    sentences = [" ".join(words)] * 3 + words
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type="word",
        vocab_size=len(words) + 3,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_file=str(path))
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def build_nmt_model(directory: Path) -> ModelCard:
    """Write model.bin, config.json, vocabularies and source/target.spm; return their card."""
    from ctranslate2.specs import common_spec, transformer_spec

    directory.mkdir(parents=True, exist_ok=True)
    source_vocab = _train_spm(list(DICTIONARY), directory / "source.spm")
    target_vocab = _train_spm(sorted(set(DICTIONARY.values())), directory / "target.spm")
    vs, vt, positions = len(source_vocab), len(target_vocab), MAX_POSITIONS
    d = vs + positions
    tokens, places = np.arange(vs), vs + np.arange(positions)
    f32 = np.float32

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=f32)

    def norm(spec: common_spec.LayerNormSpec) -> None:
        spec.gamma, spec.beta = np.ones(d, dtype=f32), zeros(d)

    spec = transformer_spec.TransformerSpec.from_config(1, 1, pre_norm=True)
    encoder, decoder = spec.encoder, spec.decoder
    encoder.scale_embeddings = decoder.scale_embeddings = False
    source_embed = zeros(vs, d)
    source_embed[tokens, tokens] = _SCALE
    encoder.embeddings[0].weight = source_embed
    position_table = zeros(positions, d)
    position_table[np.arange(positions), places] = _SCALE
    encoder.position_encodings.encodings = position_table
    decoder.position_encodings.encodings = position_table.copy()
    decoder.embeddings.weight = zeros(vt, d)  # the decoder sees only its position

    for layer in (encoder.layer[0], decoder.layer[0]):
        norm(layer.self_attention.layer_norm)
        layer.self_attention.linear[0].weight = zeros(3 * d, d)
        layer.self_attention.linear[1].weight = zeros(d, d)  # self-attention adds nothing
        norm(layer.ffn.layer_norm)
        layer.ffn.linear_0.weight = zeros(4, d)
        layer.ffn.linear_1.weight = zeros(d, 4)  # nor does the feed-forward block
    norm(encoder.layer_norm)
    norm(decoder.layer_norm)

    cross = decoder.layer[0].attention
    norm(cross.layer_norm)
    query = zeros(d, d)
    query[places, places] = _SHARPNESS  # step t asks for position t …
    key_value = zeros(2 * d, d)
    key_value[places, places] = 1.0  # … keys are the source positions …
    key_value[d + tokens, tokens] = 1.0  # … values are the source tokens
    output = zeros(d, d)
    output[tokens, tokens] = 4.0
    cross.linear[0].weight, cross.linear[1].weight, cross.linear[2].weight = (
        query,
        key_value,
        output,
    )

    projection = zeros(vt, d)
    target_index = {piece: i for i, piece in enumerate(target_vocab)}
    for s, piece in enumerate(source_vocab):
        word = piece.removeprefix("▁")
        if piece in ("<unk>", "<s>", "</s>"):
            projection[target_index[piece], s] = 20.0
        elif word in DICTIONARY:
            projection[target_index["▁" + DICTIONARY[word]], s] = 20.0
    decoder.projection.weight = projection

    spec.register_source_vocabulary(source_vocab)
    spec.register_target_vocabulary(target_vocab)
    spec.validate()
    spec.save(str(directory))
    return _card(directory)


def _card(directory: Path) -> ModelCard:
    names = ["model.bin", "config.json", "source.spm", "target.spm"]
    names += sorted(p.name for p in directory.glob("*vocabulary*"))
    files = tuple(
        ModelFile(
            name=name,
            sha256=hashlib.sha256((directory / name).read_bytes()).hexdigest(),
            size=(directory / name).stat().st_size,
        )
        for name in names
    )
    return ModelCard(
        id="tiny-nmt-en-fr",
        capability="translate",  # type: ignore[arg-type]
        engine="nmt-ct2",
        format="ctranslate2",
        files=files,
        sources=(LocalSource(paths={n: str(directory / n) for n in names}),),
        defaults={"source": "en", "targets": ["fr"], "beam_size": 1, "max_tokens": 60},
    )
