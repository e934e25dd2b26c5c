"""``knn``: the nearest labelled products vote for their categories, weighted by similarity
(a softmax of cosine similarities at the embedding temperature). A leaf without examples still
takes part through its own path text, so it keeps its zero-shot mass. No LLM. Needs
``Classifier(examples=...)`` (``--examples FILE``)."""

from __future__ import annotations

from llmcat.strategies import register
from llmcat.strategies.base import Outcome
from llmcat.strategies.experts import LearnedStrategy
from llmcat.types import Product


@register
class KNN(LearnedStrategy):
    name = "knn"
    summary = "the nearest labelled examples vote (needs examples), no LLM"

    async def run(self, product: Product) -> Outcome:
        query = await self.context.embed_product(product)
        return self.experts.outcome((await self.experts.knn(query[None, :]))[0])
