"""``hierarchical``: top-down, one constrained choice among the children per level (shown by
name, after the product, so every level re-uses the cached product prefix), keeping a beam of the
``beam`` most probable partial paths. With ``min_confidence`` a path stops at a node whose
children are all below it."""

from __future__ import annotations

from llmcat.config.options import ClassifyOptions
from llmcat.strategies import register
from llmcat.strategies.base import Outcome
from llmcat.strategies.choice import ChoiceStrategy, check_choice_size
from llmcat.taxonomy.tree import Category, Taxonomy
from llmcat.types import Product, Usage

#: one beam entry: (node, None for the root; probability of the path; stopped early)
Beam = tuple[Category | None, float, bool]


@register
class Hierarchical(ChoiceStrategy):
    name = "hierarchical"
    summary = "top-down, one constrained choice per level, with a beam"
    template_option = "step_template"

    @classmethod
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        parents = [None, *(c.id for c in taxonomy if taxonomy.children(c.id))]
        widest = max((taxonomy.children(p) for p in parents), key=len)
        check_choice_size(
            [c.name for c in widest],
            "a level of the taxonomy",
            "use strategy='shortlist' (pip install 'llmcat[embed]' for the local embedder)",
        )

    async def run(self, product: Product) -> Outcome:
        taxonomy, options = self.context.taxonomy, self.context.options
        beams: list[Beam] = [(None, 1.0, False)]
        usage, cached, model, has_probs = Usage(), True, self.context.engine.backend.model, True
        while True:
            expanded: list[Beam] = []
            for node, prob, stopped in beams:
                children = taxonomy.children(node.id if node else None)
                if stopped or not children:
                    expanded.append((node, prob, stopped))
                    continue
                choice = await self.chooser.choose(product, children, by_name=True, parent=node)
                usage, cached, model = usage + choice.usage, cached and choice.cached, choice.model
                if choice.distribution is None:
                    has_probs = False
                    expanded.append((choice.category, prob, False))
                    continue
                ranked = sorted(choice.distribution.items(), key=lambda kv: -kv[1])[: options.beam]
                for cid, q in ranked:
                    low = options.min_confidence is not None and q < options.min_confidence
                    if low and node is not None:
                        expanded.append((node, prob, True))  # the child is unclear: stop here
                    else:
                        expanded.append((taxonomy.get(cid), prob * q, False))
            expanded.sort(key=lambda b: -b[1])
            beams = _dedupe(expanded)[: options.beam]
            if all(
                stopped or not taxonomy.children(n.id if n else None) for n, _, stopped in beams
            ):
                break
        best, prob, stopped = beams[0]
        assert best is not None
        distribution = None
        if has_probs:
            total = sum(p for _, p, _ in beams) or 1.0
            distribution = {n.id: p / total for n, p, _ in beams if n is not None}
        return Outcome(
            category=best,
            distribution=distribution,
            usage=usage,
            cached=cached,
            model=model,
            confidence=prob if has_probs else None,
            stopped_early=stopped,
        )


def _dedupe(beams: list[Beam]) -> list[Beam]:
    seen: set[str | None] = set()
    out = []
    for node, prob, stopped in beams:
        key = node.id if node else None
        if key not in seen:
            seen.add(key)
            out.append((node, prob, stopped))
    return out
