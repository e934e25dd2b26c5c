"""``HashingEmbedder``: a deterministic bag of hashed words and character trigrams, no model;
for tests and as the lexical share of ``LexicalBlend``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmcat.embeddings.base import Embedder, normalise

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix

#: ``embedding_model`` value of the lexical embedder that needs no model
HASHING = "hashing"


class HashingEmbedder(Embedder):
    """Hashed words and character trigrams; no model, fully deterministic."""

    def __init__(self, dim: int = 2048) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    async def embed(self, texts: Sequence[str]) -> Matrix:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            features = words + [w[j : j + 3] for w in words for j in range(max(1, len(w) - 2))]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                out[i, int.from_bytes(digest, "little") % self.dim] += 1.0
        return normalise(out)
