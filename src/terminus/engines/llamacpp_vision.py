"""The vision side of a llama.cpp model: its projector (``mmproj``) file and what it costs.

A card names its projector in ``defaults.mmproj`` (one of its own files, so it is
sha256-pinned and cached like the weights). llama.cpp's multimodal library (mtmd)
encodes each image with it into embeddings that take prompt positions like tokens.
"""

from __future__ import annotations

from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard

#: The projector's compute buffers come on top of its weights; a quarter more is what
#: SigLIP-style towers took here (an estimate, counted so the memory check is not short).
PROJECTOR_OVERHEAD = 1.25


def projector_bytes(card: ModelCard, files: ModelFiles) -> int:
    """Memory the projector needs when loaded (0 for a text-only model)."""
    name = card.defaults.get("mmproj")
    if not name or name not in files.paths:
        return 0
    return int(files.paths[name].stat().st_size * PROJECTOR_OVERHEAD)
