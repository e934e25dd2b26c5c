"""``flat``: every leaf path in one constrained choice. For small label sets (auto: <= 50)."""

from __future__ import annotations

from ..errors import ConfigError
from ..options import ClassifyOptions
from ..taxonomy import Taxonomy
from ..types import Product
from . import register
from .base import Outcome, settle
from .choice import ChoiceStrategy

#: ``flat`` refuses more leaves than this: the prompt would not fit most context windows.
FLAT_HARD_LIMIT = 2000


@register
class Flat(ChoiceStrategy):
    name = "flat"
    summary = "every leaf path in one constrained choice (small label sets)"

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        leaves = len(taxonomy.leaves())
        if leaves > FLAT_HARD_LIMIT:
            raise ConfigError(
                f"{leaves} labels are too many for one prompt (flat takes up to "
                f"{FLAT_HARD_LIMIT}); use strategy='shortlist' or 'hierarchical'"
            )

    async def run(self, product: Product) -> Outcome:
        choice = await self.chooser.choose(product, self.context.leaves)
        outcome = Outcome(
            choice.category, choice.distribution, choice.usage, choice.cached, choice.model
        )
        return settle(outcome, self.context.taxonomy, self.context.options.min_confidence)
