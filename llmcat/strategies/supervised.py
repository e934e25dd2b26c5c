"""``supervised``: a logistic regression trained on frozen embeddings of the labelled examples
(``llmcat.learning.logistic``), saved in the cache folder and trained once per set of examples. Leaves
without examples keep their zero-shot mass. No LLM. Needs ``Classifier(examples=...)``."""

from __future__ import annotations

from llmcat.strategies import register
from llmcat.strategies.base import Outcome
from llmcat.strategies.experts import LearnedStrategy
from llmcat.types import Product


@register
class Supervised(LearnedStrategy):
    name = "supervised"
    summary = "a classifier trained on the examples' embeddings (needs examples), no LLM"

    async def run(self, product: Product) -> Outcome:
        query = await self.context.embed_product(product)
        return self.experts.outcome((await self.experts.supervised(query[None, :]))[0])
