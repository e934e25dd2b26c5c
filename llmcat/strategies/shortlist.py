"""``shortlist``: embed the product and every leaf path (cached on disk), offer the
``shortlist_k`` nearest leaves in one constrained choice, and with ``fuse_embedding`` pool the
model's distribution with the embedding similarity, each weighted by its fitted trust
(``llmcat.trust``; all weights 1, the plain product of experts, when nothing was fitted)."""

from __future__ import annotations

from ..distributions import similarity_distribution
from ..options import ClassifyOptions
from ..taxonomy import Taxonomy
from ..trust import TrustFit
from ..types import Product, Usage
from . import register
from .base import Outcome, settle
from .choice import ChoiceStrategy, check_choice_size

#: the experts this strategy fuses
EXPERTS = ("llm", "embedding")


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
        if context.options.fuse_embedding:
            # A fit that gives the model no weight: its answer could not change anything, so it
            # is not asked (the embedded SmolLM2's shipped fit does this).
            await context.engine.backend.prepare()
            trust = context.trust(context.engine.backend.model, self.prompt_version, EXPERTS)
            if trust.weights.get("llm", 1.0) == 0.0:
                return self._embedding_only(nearest, trust)
        candidates = [context.taxonomy.get(cid) for cid, _ in nearest]
        choice = await self.chooser.choose(product, candidates)
        outcome = Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
        if context.options.fuse_embedding and choice.distribution is not None:
            experts = {"llm": choice.distribution, "embedding": similarity_distribution(nearest)}
            trust = context.trust(choice.model, self.prompt_version, EXPERTS)
            fused = trust.fuse(experts)
            outcome.distribution, outcome.experts, outcome.trust = fused, experts, trust.describe()
            outcome.category = context.taxonomy.get(max(fused, key=fused.__getitem__))
        return settle(outcome, context.taxonomy, context.options.min_confidence)

    def _embedding_only(self, nearest: list[tuple[str, float]], fit: TrustFit) -> Outcome:
        context = self.context
        experts = {"embedding": similarity_distribution(nearest)}
        fused = fit.fuse(experts)
        outcome = Outcome(
            category=context.taxonomy.get(max(fused, key=fused.__getitem__)),
            distribution=fused,
            usage=Usage(),
            cached=False,
            model=context.engine.backend.model,
            experts=experts,
            trust=fit.describe(),
        )
        return settle(outcome, context.taxonomy, context.options.min_confidence)
