"""``supervised``: a logistic regression trained on frozen embeddings of the labelled examples
(``llmcat.supervised``), saved in the cache folder and trained once per set of examples. Leaves
without examples keep their zero-shot mass. No LLM. Needs ``Classifier(examples=...)``."""

from __future__ import annotations

from ..types import Product
from . import register
from .base import Outcome
from .experts import LearnedStrategy


@register
class Supervised(LearnedStrategy):
    name = "supervised"
    summary = "a classifier trained on the examples' embeddings (needs examples), no LLM"

    async def run(self, product: Product) -> Outcome:
        query = await self.context.embed_product(product)
        return self.experts.outcome((await self.experts.supervised(query[None, :]))[0])
