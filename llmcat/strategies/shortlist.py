"""``shortlist``: embed the product and every leaf path (cached on disk), offer the
``shortlist_k`` nearest leaves in one constrained choice.

``FusedShortlist`` (``shortlist`` with ``fuse_embedding``, the default) also pools the model's
distribution with the embedding similarity, each weighted by the trust the plan names
(``llmcat.confidence.trust``; all weights 1, the plain product of experts, when nothing was fitted). A
weight of 0 for the model means it is not asked at all.

With examples the shortlist is the union of the nearest leaves, the categories the nearest
examples vote for and the supervised head's best (``experts.ExampleExperts.pooled``), and the
kNN and supervised experts join the pool. With the plan's trust source ``examples`` the weights
are fitted on the examples by cross-validation (at most ``fit_model_calls`` of them asked of the
LLM), once per set of examples, model and template (cached).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from llmcat.confidence.distributions import similarity_distribution
from llmcat.confidence.trust import TrustFit, neutral
from llmcat.config.options import ClassifyOptions
from llmcat.llm.once import AsyncOnce
from llmcat.strategies import register
from llmcat.strategies.base import Outcome, Strategy, StrategyContext
from llmcat.strategies.choice import Choice, ChoiceStrategy, check_choice_size
from llmcat.strategies.experts import ExampleExperts, examples_digest, fit_on_examples
from llmcat.strategies.plan import EXAMPLE_EXPERTS, Plan
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Product

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
    uses_embedder = True

    @classmethod
    def for_plan(cls, plan: Plan) -> type[Strategy]:
        return FusedShortlist if plan.fused else cls

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        longest = sorted((c.path_text for c in taxonomy.leaves()), key=len, reverse=True)
        check_choice_size(
            longest[: options.shortlist_k], "the shortlist", "use a smaller shortlist_k"
        )

    async def run(self, product: Product) -> Outcome:
        context = self.context
        nearest = await context.nearest_leaves(product, context.options.shortlist_k)
        choice = await self.chooser.choose(product, [context.taxonomy.get(c) for c, _ in nearest])
        return choice.outcome()


class FusedShortlist(Shortlist):
    """``shortlist`` with ``fuse_embedding``: the model's answer is one expert among others."""

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        self.experts = ExampleExperts(context) if context.examples else None
        #: the weights with examples; None: the examples cannot be measured for this run
        self._example_trust: AsyncOnce[TrustFit | None] = AsyncOnce()

    async def run(self, product: Product) -> Outcome:
        if self.experts is not None:
            trust = await self._example_trust.get(self._fit_example_trust)
            if trust is not None:
                return await self._with_examples(product, self.experts, trust)
        return await self._zero_shot(product)

    async def _zero_shot(self, product: Product) -> Outcome:
        context = self.context
        plan = await context.final_plan()
        assert plan.trust is not None
        nearest = await context.nearest_leaves(product, context.options.shortlist_k)
        experts = {"embedding": similarity_distribution(nearest, context.embedder().temperature)}
        trust = context.trust_for_run(plan.trust, experts["embedding"])
        if not plan.asks_llm:
            return self._fused(experts, trust)
        choice = await self.chooser.choose(product, [context.taxonomy.get(c) for c, _ in nearest])
        outcome = choice.outcome()
        return self._fused({"llm": answer_distribution(choice), **experts}, trust, outcome)

    async def _with_examples(
        self, product: Product, experts: ExampleExperts, trust: TrustFit
    ) -> Outcome:
        query = await self.context.embed_product(product)
        ids, opinions = experts.pooled(await experts.rows(query[None, :]), 0)
        if trust.weights.get("llm", 1.0) == 0.0:
            return self._fused(dict(opinions), trust)
        choice = await self.chooser.choose(product, [self.context.taxonomy.get(i) for i in ids])
        outcome = choice.outcome()
        return self._fused({**opinions, "llm": answer_distribution(choice)}, trust, outcome)

    def _fused(
        self, experts: dict[str, dict[str, float]], trust: TrustFit, outcome: Outcome | None = None
    ) -> Outcome:
        context = self.context
        fused = trust.fuse(experts)
        category = context.taxonomy.get(max(fused, key=fused.__getitem__))
        if outcome is None:  # the model was not asked
            outcome = Outcome.unasked(category, None, context.engine.backend.model)
        return replace(
            outcome,
            category=category,
            distribution=fused,
            experts=experts,
            trust=trust.describe(),
            review_threshold=trust.review_threshold,
        )

    async def _fit_example_trust(self) -> TrustFit | None:
        """The weights with examples: the plan's, or with its source ``examples`` fitted on
        them starting from the plan's (a shipped fit, or neutral). None when the fit cannot
        measure the examples for this run (``_unmeasurable``): then the zero-shot path."""
        context, experts = self.context, self.experts
        assert experts is not None
        plan = await context.final_plan()
        base = plan.trust
        assert base is not None
        if plan.trust_source != "examples":
            return base  # the caller's fit, or neutral weights, as given
        if await self._unmeasurable(experts):
            return None
        model = plan.model
        # A model already measured at weight 0 for this template is not asked again.
        ask = plan.fit_model_calls > 0
        budget = plan.fit_model_calls
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

    async def _unmeasurable(self, experts: ExampleExperts) -> bool:
        """Whether most of the run's products are of a kind the cross-validation never saw.
        With one example per category, a held-out example always stands for a product of a
        category nobody labelled; when most of the run's products (estimated on the sample
        ``observe`` took) are of a category with an example, the fit would weigh the experts
        for the wrong case (docs/benchmarks.md, "One example per category")."""
        run = self.context.run
        sample = run.vectors if run is not None else ()
        if not experts.all_alone() or not sample:
            return False
        share = await experts.share_with_examples(sample)
        if share < 0.5:
            return False
        log.warning(
            "llmcat: every one of the %d examples is the only one of its category, and about "
            "%.0f%% of the products are of a category with one: cross-validation cannot measure "
            "what the examples add to those, so the zero-shot default classifies them (two or "
            "more examples per category let them count; strategy='knn' or 'supervised' uses "
            "them alone)",
            len(self.context.examples),
            100 * share,
        )
        return True
