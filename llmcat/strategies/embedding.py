"""``embedding``: the nearest leaf by embedding alone, no LLM. The baseline every eval report
shows beside the LLM strategy."""

from __future__ import annotations

from llmcat.confidence.distributions import similarity_distribution
from llmcat.strategies import register
from llmcat.strategies.base import Outcome, Strategy
from llmcat.types import Product


@register
class Embedding(Strategy):
    name = "embedding"
    uses_model = False
    uses_embedder = True
    summary = "the nearest leaf by embedding alone, no LLM (the baseline)"

    @property
    def prompt_version(self) -> str:
        return f"embedding:{self.context.embedder().name}"

    async def run(self, product: Product) -> Outcome:
        context = self.context
        nearest = await context.nearest_leaves(product, context.options.shortlist_k)
        return Outcome.unasked(
            context.taxonomy.get(nearest[0][0]),
            similarity_distribution(nearest, context.embedder().temperature),
            context.embedder().name,
        )
