"""``knn``: the nearest labelled products vote for their categories, weighted by similarity
(a softmax of cosine similarities at the embedding temperature). A leaf without examples still
takes part through its own path text, so it keeps its zero-shot mass. No LLM. Needs
``Classifier(examples=...)`` (``--examples FILE``)."""

from __future__ import annotations

import math

from ..distributions import EMBEDDING_TEMPERATURE
from ..errors import ConfigError
from ..types import Product, Usage
from . import register
from .base import Outcome, Strategy, StrategyContext, settle


@register
class KNN(Strategy):
    name = "knn"
    uses_model = False
    summary = "the nearest labelled examples vote (needs examples), no LLM"

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        if not context.examples:
            raise ConfigError(
                "the knn strategy learns from labelled products - pass examples=... "
                "(--examples FILE)"
            )
        labelled = {e.category.id for e in context.examples}
        self._unlabelled = {leaf.id for leaf in context.leaves if leaf.id not in labelled}

    @property
    def prompt_version(self) -> str:
        return f"knn:{self.context.embedder().name}:{len(self.context.examples)}"

    async def run(self, product: Product) -> Outcome:
        context, k = self.context, self.context.options.knn_k
        query = await context.embed_product(product)
        votes = [
            (e.category.id, sim) for e, sim in await context.example_index().nearest_to(query, k)
        ]
        if self._unlabelled:  # leaves nobody labelled answer for themselves
            leaves = await context.category_index().nearest_to(query, k + len(context.leaves))
            votes += [(cid, sim) for cid, sim in leaves if cid in self._unlabelled][:k]
        votes = sorted(votes, key=lambda v: -v[1])[:k]
        top = votes[0][1]
        distribution: dict[str, float] = {}
        for cid, sim in votes:
            distribution[cid] = distribution.get(cid, 0.0) + math.exp(
                (sim - top) / EMBEDDING_TEMPERATURE
            )
        total = sum(distribution.values())
        distribution = {cid: w / total for cid, w in distribution.items()}
        best = max(distribution, key=distribution.__getitem__)
        outcome = Outcome(
            category=context.taxonomy.get(best),
            distribution=distribution,
            usage=Usage(),
            cached=False,
            model=context.embedder().name,
        )
        return settle(outcome, context.taxonomy, context.options.min_confidence)
