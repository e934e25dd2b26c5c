"""``flat``: every leaf path in one constrained choice. For small label sets (auto: <= 50)."""

from __future__ import annotations

from ..options import ClassifyOptions
from ..taxonomy import Taxonomy
from ..types import Product
from . import register
from .base import Outcome
from .choice import ChoiceStrategy, check_choice_size


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
        return Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
