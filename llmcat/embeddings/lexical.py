"""``LexicalBlend``: any embedder with a share of the hashing embedder's lexical similarity
mixed in (``lexical_weight``, ``--lexical-weight``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmcat.embeddings.base import Embedder
from llmcat.embeddings.hashing import HashingEmbedder
from llmcat.errors import ConfigError

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix


class LexicalBlend(Embedder):
    """``inner``'s vectors beside the hashing embedder's, scaled so that a dot product is
    ``(1 - weight) * inner + weight * lexical``: products and categories that share words and
    word pieces (model numbers, brand names, "Chargeur") come closer, which a small embedding
    model misses. Its own name, so cache files, fits and reports keep the two apart."""

    def __init__(self, inner: Embedder, weight: float) -> None:
        if not 0.0 < weight < 1.0:
            raise ConfigError(f"lexical_weight must lie between 0 and 1, not {weight}")
        self.inner = inner
        self.lexical = HashingEmbedder()
        self.name = f"{inner.name}+lexical:{weight:g}"
        self.temperature = inner.temperature
        self.lexical_weight = weight  # the share it holds (``with_lexical`` adds none to it)
        self.parallel_calls = inner.parallel_calls

    def _joined(self, dense: Matrix, lexical: Matrix) -> Matrix:
        import numpy as np

        return np.hstack(
            [
                np.asarray(dense, dtype=np.float32)
                * np.float32((1.0 - self.lexical_weight) ** 0.5),
                np.asarray(lexical, dtype=np.float32) * np.float32(self.lexical_weight**0.5),
            ]
        )

    async def embed(self, texts: Sequence[str]) -> Matrix:
        return self._joined(await self.inner.embed(texts), await self.lexical.embed(texts))

    async def embed_categories(self, texts: Sequence[str]) -> Matrix:
        dense = await self.inner.embed_categories(texts)
        return self._joined(dense, await self.lexical.embed(texts))

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()


def with_lexical(embedder: Embedder, weight: float | None) -> Embedder:
    """``embedder`` blended with the lexical similarity at ``weight`` (None: the embedder's own
    ``lexical_weight``; itself at 0)."""
    if isinstance(embedder, LexicalBlend):
        return embedder
    share = embedder.lexical_weight if weight is None else weight
    return LexicalBlend(embedder, share) if share > 0 else embedder
