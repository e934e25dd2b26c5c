"""``shortlist``: embed the product and every leaf path (cached on disk), offer the
``shortlist_k`` nearest leaves in one constrained choice, and with ``fuse_embedding`` pool the
model's distribution with the embedding similarity, each weighted by its fitted trust
(``llmcat.trust``; all weights 1, the plain product of experts, when nothing was fitted).

With examples the shortlist is the union of the nearest leaves, the categories the nearest
examples vote for and the supervised head's best (``experts.ExampleExperts.pooled``), and the
kNN and supervised experts join the pool. Unless ``trust`` says otherwise, the weights are then
fitted on the examples by cross-validation (at most ``fit_model_calls`` of them asked of the
LLM), once per set of examples, model and template (cached).
"""

from __future__ import annotations

import logging

from ..distributions import similarity_distribution
from ..once import AsyncOnce
from ..options import ClassifyOptions
from ..taxonomy import Taxonomy
from ..trust import NEUTRAL, TrustFit, neutral
from ..types import Product, Usage
from . import register
from .base import Outcome, StrategyContext, settle
from .choice import Choice, ChoiceStrategy, check_choice_size
from .experts import ExampleExperts, examples_digest, fit_on_examples

#: the experts this strategy fuses
EXPERTS = ("llm", "embedding")
#: and with examples
EXAMPLE_EXPERTS = ("llm", "embedding", "knn", "supervised")

log = logging.getLogger("llmcat")


def answer_distribution(choice: Choice) -> dict[str, float]:
    """The model's distribution over the candidates; without logprobs, its answer as a vote
    (all the mass on it: the pool's floor keeps the others in play, and the fitted weight says
    how much the vote counts)."""
    return choice.distribution or {choice.category.id: 1.0}


@register
class Shortlist(ChoiceStrategy):
    name = "shortlist"
    summary = "the k nearest leaves by embedding, then one constrained choice among them"

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.experts = ExampleExperts(context) if context.examples else None
        self._example_trust: AsyncOnce[TrustFit] = AsyncOnce()

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        longest = sorted((c.path_text for c in taxonomy.leaves()), key=len, reverse=True)
        check_choice_size(
            longest[: options.shortlist_k], "the shortlist", "use a smaller shortlist_k"
        )

    async def run(self, product: Product) -> Outcome:
        context = self.context
        if self.experts is not None and context.options.fuse_embedding:
            return await self._with_examples(product, self.experts)
        nearest = await context.nearest_leaves(product, context.options.shortlist_k)
        if context.options.fuse_embedding:
            # A fit that gives the model no weight: its answer could not change anything, so it
            # is not asked (the embedded SmolLM2's shipped fit does this).
            await context.engine.backend.prepare()
            trust = context.trust(context.engine.backend.model, self.prompt_version, EXPERTS)
            if trust.weights.get("llm", 1.0) == 0.0:
                return self._fused({"embedding": similarity_distribution(nearest)}, trust)
        candidates = [context.taxonomy.get(cid) for cid, _ in nearest]
        choice = await self.chooser.choose(product, candidates)
        outcome = Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
        if context.options.fuse_embedding:
            experts = {
                "llm": answer_distribution(choice),
                "embedding": similarity_distribution(nearest),
            }
            trust = context.trust(choice.model, self.prompt_version, EXPERTS)
            return self._fused(experts, trust, outcome)
        return settle(outcome, context.taxonomy, context.options.min_confidence)

    async def _with_examples(self, product: Product, experts: ExampleExperts) -> Outcome:
        query = await self.context.embed_product(product)
        ids, opinions = experts.pooled(await experts.rows(query[None, :]), 0)
        trust = await self._example_trust.get(self._fit_example_trust)
        if trust.weights.get("llm", 1.0) == 0.0:
            return self._fused(dict(opinions), trust)
        choice = await self.chooser.choose(product, [self.context.taxonomy.get(i) for i in ids])
        outcome = Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
        return self._fused({**opinions, "llm": answer_distribution(choice)}, trust, outcome)

    def _fused(
        self, experts: dict[str, dict[str, float]], trust: TrustFit, outcome: Outcome | None = None
    ) -> Outcome:
        context = self.context
        fused = trust.fuse(experts)
        if outcome is None:  # the model was not asked
            outcome = Outcome(
                category=context.taxonomy.get(max(fused, key=fused.__getitem__)),
                usage=Usage(),
                cached=False,
                model=context.engine.backend.model,
            )
        outcome.distribution, outcome.experts, outcome.trust = fused, experts, trust.describe()
        outcome.category = context.taxonomy.get(max(fused, key=fused.__getitem__))
        return settle(outcome, context.taxonomy, context.options.min_confidence)

    async def _fit_example_trust(self) -> TrustFit:
        """The weights with examples: the ``trust`` option as given, else fitted on them."""
        context, experts = self.context, self.experts
        assert experts is not None
        await context.engine.backend.prepare()
        model = context.engine.backend.model
        chosen = context.options.trust
        if chosen == NEUTRAL:
            return neutral(EXAMPLE_EXPERTS)
        base = context.trust(model, self.prompt_version, EXPERTS)
        if chosen != "auto":
            return base  # the caller's fit (a file or a TrustFit), as given
        # A model already measured at weight 0 for this template is not asked again.
        ask = base.weights.get("llm", 1.0) > 0.0 and context.options.fit_model_calls > 0
        budget = context.options.fit_model_calls if ask else 0
        digest = examples_digest(context, model, self.prompt_version, str(budget))
        folder = context.cache_folder("fits")
        file = folder / f"{digest}.json" if folder is not None else None
        if file is not None and file.exists():
            return TrustFit.load(file)

        async def ask_model(product: Product, ids: list[str]) -> dict[str, float] | None:
            taxonomy = context.taxonomy
            return answer_distribution(
                await self.chooser.choose(product, [taxonomy.get(i) for i in ids])
            )

        items, accuracy = await experts.cross_validate(ask_model if ask else None, budget)
        if not items:
            return base if ask else neutral(EXAMPLE_EXPERTS)
        what = f"{len(items)} of {len(context.examples)} examples" + (
            f", {budget} asked of {model}" if ask else f", {base.describe()}"
        )
        fit = fit_on_examples(
            items, accuracy, base=base, what=what, taxonomy=context.taxonomy.version
        )
        log.info("llmcat: trust fitted on the examples: %s (%s)", fit.describe(), fit.fitted_on)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            fit.save(file)
        return fit
