"""``TaxonomyMapper``: embeds both taxonomies (cached), runs the algorithm
(``llmcat.mapping.algorithm``) and, when given one, lets a judge pool its opinion in. The
judge is any object with the ``Judge`` protocol (``llmcat.mapping.judge.MapJudge``): the mapper
never imports it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.batch.progress import Progress
from llmcat.embeddings import (
    Embedder,
    LexicalBlend,
    TextIndex,
)
from llmcat.mapping.algorithm import (
    MapInputs,
    map_categories,
    pair_lexical_weight,
    reblend,
    resolve_known,
    roomy,
    with_names,
)
from llmcat.mapping.options import MapOptions
from llmcat.mapping.results import CategoryMapping, JudgeReport
from llmcat.taxonomy.tree import Taxonomy

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from llmcat.embeddings.base import Matrix


class Judge(Protocol):
    """What the mapper needs of a judge: the rows with its opinion pooled in, and a report.
    Rows whose source id is in ``keep`` (a resumed run's) stay as they are."""

    async def judge(
        self, results: list[CategoryMapping], inputs: MapInputs, *, keep: Collection[str] = ()
    ) -> tuple[list[CategoryMapping], JudgeReport]: ...


class TaxonomyMapper:
    """Map ``source`` onto ``target`` (see the module docstring). ``known``: pairs the caller
    already has, as ``(source path, target path or None)``; ``embedder``: any ``Embedder``
    (default: the one ``Classifier`` would use)."""

    def __init__(
        self,
        source: Taxonomy,
        target: Taxonomy,
        *,
        known: Iterable[tuple[str, str | None]] = (),
        embedder: Embedder | None = None,
        options: MapOptions | None = None,
        cache_dir: Path | None = None,
        judge: Judge | None = None,
        progress: bool | None = None,
    ) -> None:
        self.source, self.target = source, target
        self.known = resolve_known(known, source, target)
        if embedder is None:
            from llmcat.embeddings import default_embedder

            embedder = default_embedder(base_url=None, embedding_model=None, api_key=None)
        chosen = options or MapOptions()
        self.embedder = chosen.embedder(embedder)
        #: the lexical share follows the pair's shared names unless the caller set it
        self.follow_lexical = chosen.lexical_weight is None
        self.options = chosen.resolved(self.embedder)
        self.cache_dir = cache_dir
        #: the LLM as a judge (``llmcat.mapping.judge``), asked only under a fit that trusts it
        self.judge = judge
        #: progress bars on stderr (None: when it is a terminal)
        self.progress = progress
        #: what the judge did in the last ``map``
        self.judge_report: JudgeReport | None = None

    async def amap(
        self, fixed: Mapping[str, CategoryMapping] | None = None
    ) -> list[CategoryMapping]:
        """Every source category, parents first (file order within a depth). ``fixed``: rows
        already made (a resumed run's, by source id), kept as they are and followed by their
        children as any mapped parent is."""
        import numpy as np

        async def embedded(
            taxonomy: Taxonomy, texts: list[str], what: str, passages: bool
        ) -> Matrix:
            nodes = list(taxonomy)
            index = TextIndex(
                self.embedder,
                [c.id for c in nodes],
                texts,
                label=f"map-{what}-{taxonomy.version}",
                cache_dir=self.cache_dir,
                categories=passages,
            )
            label = f"map: embedding {what} categories"
            bar = Progress(len(nodes), label=label, enabled=self.progress)
            try:
                return np.asarray(await index.matrix(bar.advance))
            finally:
                bar.close()

        # Sources are embedded as queries (short products), targets as passages.
        source_matrix: ArrayLike = await embedded(
            self.source, [c.path_text for c in self.source], "source", False
        )
        target_matrix: ArrayLike = await embedded(
            self.target, [c.path_text for c in self.target], "target", True
        )
        names: ArrayLike | None = None
        if roomy(self.source, self.target) and self.options.name_weight > 0:
            names = await embedded(self.source, [c.name for c in self.source], "names", False)
        if self.follow_lexical and isinstance(self.embedder, LexicalBlend):
            fitted = self.embedder.lexical_weight
            share = pair_lexical_weight(self.source, self.target, fitted)
            dim = self.embedder.lexical.dim
            source_matrix = reblend(source_matrix, fitted, share, dim)
            target_matrix = reblend(target_matrix, fitted, share, dim)
            names = None if names is None else reblend(names, fitted, share, dim)
        if names is not None:
            source_matrix = with_names(self.source, source_matrix, names, self.options.name_weight)
        inputs = MapInputs(
            self.source, self.target, source_matrix, target_matrix, self.known, self.options
        )
        results = map_categories(
            inputs.source,
            inputs.target,
            inputs.source_matrix,
            inputs.target_matrix,
            inputs.known,
            inputs.options,
            fixed=fixed,
        )
        if self.judge is None:
            return results
        results, self.judge_report = await self.judge.judge(results, inputs, keep=set(fixed or {}))
        return results

    def map(self, fixed: Mapping[str, CategoryMapping] | None = None) -> list[CategoryMapping]:
        """Blocking ``amap``."""
        return asyncio.run(self.amap(fixed))
