"""Texts embedded once and searched by similarity: ``TextIndex`` (any keys), ``CategoryIndex``
(a taxonomy's categories). Category embeddings are cached on disk per (embedder, taxonomy
version), so a taxonomy of 10,000 categories is embedded once. Vectors are L2-normalised;
similarity is a dot product.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from llmcat.embeddings.base import Bar, Embedder, cosine
from llmcat.llm.once import AsyncOnce

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from llmcat.embeddings.base import Matrix, Scores, Vector

__all__ = ["PROGRESS_CHUNK", "CategoryIndex", "TextIndex"]

K = TypeVar("K")


#: texts per embedding call when a caller follows the progress (``TextIndex.matrix``)
PROGRESS_CHUNK = 256


class TextIndex(Generic[K]):
    """Texts embedded once per process (and cached on disk by their content, the embedder and a
    label), with nearest-neighbour lookups that return the texts' keys."""

    def __init__(
        self,
        embedder: Embedder,
        keys: Sequence[K],
        texts: Sequence[str],
        *,
        label: str,
        cache_dir: Path | None,
        categories: bool = False,
        bar: Callable[[int], Bar] | None = None,
    ) -> None:
        self.embedder = embedder
        #: the texts are category paths (``Embedder.embed_categories``), not products
        self.categories = categories
        #: makes the progress bar shown while the texts are embedded (not when cached)
        self.bar = bar
        self.keys = list(keys)
        self.texts = list(texts)
        self.label = label
        self.cache_dir = cache_dir
        self._matrix: AsyncOnce[Matrix] = AsyncOnce()
        self._wide: Scores | None = None  # the matrix in float64, made once (``wide``)
        #: vectors and offsets learned from a run (``move``), in force instead of the matrix's
        self._moved: tuple[Scores, Scores] | None = None

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        blob = ("\n".join(self.texts) + self.embedder.name).encode()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        safe = re.sub(r"[^\w.-]", "_", self.embedder.name)
        return self.cache_dir / "embeddings" / f"{safe}-{self.label}-{digest}.npy"

    async def matrix(self, progress: Callable[[int], None] | None = None) -> Matrix:
        """The (texts x dim) matrix: from the disk cache, else embedded once, however many
        items ask for it at the same time. ``progress`` is told of each chunk of texts embedded
        (then they are embedded ``PROGRESS_CHUNK`` at a time)."""
        return await self._matrix.get(lambda: self._load_or_embed(progress))

    async def _load_or_embed(self, progress: Callable[[int], None] | None = None) -> Matrix:
        import numpy as np

        file = self._cache_file()
        if file is not None and file.exists():
            cached: Matrix = np.load(file)
            return cached
        if progress is None and self.bar is not None:
            bar = self.bar(len(self.texts))
            try:
                return await self._load_or_embed(bar.advance)
            finally:
                bar.close()
        embed = self.embedder.embed_categories if self.categories else self.embedder.embed
        # With progress, the texts are embedded a chunk at a time and, with a cache, each chunk
        # is kept as it is done: a killed run (a whole taxonomy to map, a catalogue to index)
        # embeds only the chunks it had not finished when run again.
        parts_dir = file.with_name(f"{file.stem}.parts") if file is not None else None
        if progress is None:
            matrix = await embed(self.texts)
        else:
            parts: list[Matrix] = []
            for start in range(0, len(self.texts), PROGRESS_CHUNK):
                chunk = self.texts[start : start + PROGRESS_CHUNK]
                part = parts_dir / f"{start}.npy" if parts_dir is not None else None
                if part is not None and part.exists():
                    parts.append(np.load(part))
                else:
                    parts.append(np.asarray(await embed(chunk)))
                    if part is not None:
                        _save_npy(part, parts[-1])
                progress(len(chunk))
            matrix = np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        if file is not None:
            _save_npy(file, matrix)
            if parts_dir is not None:
                shutil.rmtree(parts_dir, ignore_errors=True)
        return matrix

    @property
    def built(self) -> Matrix | None:
        """The matrix once embedded or loaded in this process, else None."""
        return self._matrix.value

    def adopt(self, matrix: Matrix) -> None:
        """Use a matrix built elsewhere from the same texts and embedder (another process)."""
        if len(matrix) != len(self.texts):
            raise ValueError(f"{len(matrix)} rows for {len(self.texts)} texts")
        self._matrix.set(matrix)
        self._wide = None
        self._moved = None

    def move(self, vectors: ArrayLike, offsets: ArrayLike) -> None:
        """Search ``vectors`` instead of the matrix's, each row's similarity lowered by its
        offset (what a run taught: ``prototypes.refined``, ``hub_offsets``); ``built`` stays
        the matrix, for other processes to learn the same from the same sample."""
        import numpy as np

        wide = np.asarray(vectors, dtype=np.float64)
        shift = np.asarray(offsets, dtype=np.float64)
        if len(wide) != len(self.texts) or len(shift) != len(self.texts):
            raise ValueError(
                f"{len(wide)} rows and {len(shift)} offsets for {len(self.texts)} texts"
            )
        self._moved = (wide, shift)

    @property
    def moved(self) -> bool:
        """Whether ``move`` is in force."""
        return self._moved is not None

    async def wide(self) -> Scores:
        """The vectors searched, in float64 (the matrix, converted once; or ``move``'s)."""
        import numpy as np

        if self._moved is not None:
            return self._moved[0]
        if self._wide is None:
            self._wide = np.asarray(await self.matrix(), dtype=np.float64)
        return self._wide

    async def nearest(self, text: str, k: int) -> list[tuple[K, float]]:
        """The keys of the ``k`` texts most similar to ``text``, with the cosine similarity."""
        return await self.nearest_to((await self.embedder.embed([text]))[0], k)

    async def nearest_to(self, query: Vector, k: int) -> list[tuple[K, float]]:
        """``nearest`` for a vector already embedded (by the same embedder); ties keep order."""
        import numpy as np

        scores = cosine(await self.wide(), query)
        if self._moved is not None:
            scores = scores - self._moved[1]
        k = min(k, len(self.keys))
        top = np.argpartition(-scores, k - 1)[:k]
        ranked = sorted(top, key=lambda i: (-scores[i], i))
        return [(self.keys[i], float(scores[i])) for i in ranked]

    async def similarities(self, queries: Matrix) -> Scores:
        """(queries x texts) similarities, as ``nearest_to`` ranks them (``move``'s offsets)."""
        scores = cosine(queries, await self.wide())
        return scores - self._moved[1] if self._moved is not None else scores


def _save_npy(file: Path, matrix: Matrix) -> None:
    """``np.save`` under a private temporary name, renamed over ``file``: two processes
    embedding the same texts do not collide, and a kill leaves no torn file."""
    import numpy as np

    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.stem}.{os.getpid()}.{threading.get_ident()}.npy")
    np.save(tmp, matrix)
    tmp.replace(file)


class CategoryIndex(TextIndex[str]):
    """Embeddings of a taxonomy's categories (id -> path text), cached on disk per embedder and
    taxonomy version."""

    def __init__(
        self,
        embedder: Embedder,
        texts: dict[str, str],
        *,
        version: str,
        cache_dir: Path | None,
        bar: Callable[[int], Bar] | None = None,
    ) -> None:
        super().__init__(
            embedder,
            list(texts),
            list(texts.values()),
            label=version,
            cache_dir=cache_dir,
            categories=True,
            bar=bar,
        )
