"""``flat``: every leaf path in one constrained choice. For small label sets (auto: <= 50)."""

from __future__ import annotations

from llmcat.config.options import ClassifyOptions
from llmcat.strategies import register
from llmcat.strategies.base import Outcome
from llmcat.strategies.choice import ChoiceStrategy, check_choice_size
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Product


@register
class Flat(ChoiceStrategy):
    name = "flat"
    summary = "every leaf path in one constrained choice (small label sets)"

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        check_choice_size(
            [c.path_text for c in taxonomy.leaves()],
            "the taxonomy",
            "use strategy='shortlist' or 'hierarchical'",
        )

    async def run(self, product: Product) -> Outcome:
        choice = await self.chooser.choose(product, self.context.leaves)
        return choice.outcome()
