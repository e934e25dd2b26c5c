"""``shortlist``: embed the product and every leaf path (cached on disk), offer the
``shortlist_k`` nearest leaves in one constrained choice, and with ``fuse_embedding`` multiply
the model's distribution with the embedding similarity (a product of experts)."""

from __future__ import annotations

from ..distributions import product_of_experts, similarity_distribution
from ..options import ClassifyOptions
from ..taxonomy import Taxonomy
from ..types import Product
from . import register
from .base import Outcome, settle
from .choice import ChoiceStrategy, check_choice_size


@register
class Shortlist(ChoiceStrategy):
    name = "shortlist"
    summary = "the k nearest leaves by embedding, then one constrained choice among them"

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        longest = sorted((c.path_text for c in taxonomy.leaves()), key=len, reverse=True)
        check_choice_size(
            longest[: options.shortlist_k], "the shortlist", "use a smaller shortlist_k"
        )

    async def run(self, product: Product) -> Outcome:
        context = self.context
        nearest = await context.nearest_leaves(product, context.options.shortlist_k)
        candidates = [context.taxonomy.get(cid) for cid, _ in nearest]
        choice = await self.chooser.choose(product, candidates)
        outcome = Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
        if context.options.fuse_embedding and choice.distribution is not None:
            fused = product_of_experts(choice.distribution, similarity_distribution(nearest))
            outcome.distribution = fused
            outcome.category = context.taxonomy.get(max(fused, key=fused.__getitem__))
        return settle(outcome, context.taxonomy, context.options.min_confidence)
