"""The experts that learn from labelled examples, and the trust fitted on them.

Over every leaf (and every example category that is not a leaf):

- ``zero_shot``: the similarity of the product to each category path (a softmax at the
  embedding temperature); an inner-node category is as similar as its best leaf.
- ``knn``: the ``knn_k`` nearest examples vote for their categories, weighted by a softmax of
  their similarities; leaves nobody labelled vote with their own path text, so they keep their
  zero-shot mass.
- ``supervised``: a logistic regression on the examples' embeddings (``llmcat.learning.logistic``); the
  zero-shot mass of the leaves without examples stays theirs, the rest is the head's.
- ``top_level``: the same regression trained on the examples' top-level categories, each leaf
  given its top level's probability. Many top-level classes with plenty of examples each are
  learned better than hundreds of leaves with one or two each; pooled, it keeps the leaf
  experts inside the right department. A top level without examples keeps its zero-shot mass.

``pooled`` restricts them to the candidates one product is judged among: the ``shortlist_k``
nearest leaves, every category the nearest examples vote for, and the head's ``shortlist_k``
best. ``cross_validate`` computes the same for each example from the others (leave-one-out kNN,
5-fold head) to fit the weights of the fusion without touching the products to classify.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmcat.confidence.calibration import review_threshold
from llmcat.confidence.distributions import log_linear_pool
from llmcat.confidence.trust import FitItem, TrustFit, fit_weights, mean_nll
from llmcat.embeddings import cosine
from llmcat.errors import ConfigError
from llmcat.learning.logistic import SupervisedHead, choose_c, data_digest
from llmcat.llm.once import AsyncOnce
from llmcat.strategies.base import Outcome, Strategy, StrategyContext
from llmcat.types import Product

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix, Scores, Vector

log = logging.getLogger("llmcat")

#: Examples scored when trust is fitted on them (a seeded sample beyond that).
FIT_EXAMPLES = 2000
#: Categories an expert's outcome keeps in its distribution (the rest is a long, thin tail).
KEPT = 50
#: Bumped when the cross-validation changes, so that fits cached by an older one are redone.
FIT_VERSION = 5
#: Folds of the supervised head's cross-validation.
FOLDS = 5

#: asks the LLM to choose among candidate ids for a product -> its distribution, or None
AskModel = Callable[[Product, list[str]], Awaitable[dict[str, float] | None]]


@dataclass
class ExpertRows:
    """Each expert's distribution over ``ExampleExperts.ids``, one row per product."""

    similarity: Scores
    zero_shot: Scores
    knn: Scores
    supervised: Scores
    top_level: Scores | None


class LearnedStrategy(Strategy):
    """A strategy that learns from the examples alone (no LLM): ``knn``, ``supervised``."""

    uses_model = False
    uses_embedder = True

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        if not context.examples:
            raise ConfigError(
                f"the {self.name} strategy learns from labelled products - pass examples=... "
                "(--examples FILE)"
            )
        self.experts = ExampleExperts(context)

    @property
    def prompt_version(self) -> str:
        return f"{self.name}:{self.context.embedder().name}:{len(self.context.examples)}"


@dataclass(frozen=True)
class Heads:
    """The two supervised heads the experts use: over the examples' categories, and over their
    top levels."""

    leaf: SupervisedHead
    top_level: SupervisedHead | None


class _HeadSlot:
    """One head of all the examples for one labelling: its ``C`` chosen once, trained once."""

    def __init__(self, labels: list[str], what: str) -> None:
        self.labels, self.what = labels, what
        self.head: AsyncOnce[SupervisedHead] = AsyncOnce()
        self.c: AsyncOnce[float] = AsyncOnce()


class ExampleExperts:
    """See the module docstring."""

    def __init__(self, context: StrategyContext) -> None:
        self.context = context
        taxonomy, leaves = context.taxonomy, context.leaves
        leaf_ids = [c.id for c in leaves]
        extra = sorted({e.category.id for e in context.examples} - set(leaf_ids))
        #: the categories every expert spreads its mass over
        self.ids: list[str] = leaf_ids + extra
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        #: the embedder's softmax temperature (its similarities as a distribution)
        self.temperature = context.embedder().temperature
        # An example may be labelled with an inner node: it is as similar as its best leaf.
        self._beneath = {
            cid: [
                i
                for i, leaf in enumerate(leaves)
                if cid in {a.id for a in taxonomy.ancestors(leaf.id)}
            ]
            or [0]
            for cid in extra
        }
        self.labels = [e.category.id for e in context.examples]
        top = {cid: taxonomy.ancestors(cid)[0].id for cid in self.ids}
        #: each of ``ids``' top-level category, and each example's
        self.top_of = [top[cid] for cid in self.ids]
        self.top_labels = [top[cid] for cid in self.labels]
        self._slots = {"leaf": _HeadSlot(self.labels, "supervised head")}
        if len(set(self.top_labels)) > 1 and self.top_labels != self.labels:
            self._slots["top_level"] = _HeadSlot(self.top_labels, "top-level head")

    def all_alone(self) -> bool:
        """Whether every example is the only one of its category (one per category): then
        cross-validation measures only products of categories without examples."""
        return len(set(self.labels)) == len(self.labels)

    async def share_with_examples(self, vectors: Sequence[Vector]) -> float:
        """An estimate of the share of products (their ``vectors``) whose category has examples,
        from the zero-shot mass they put on the categories with examples (``m``) against the
        examples' own: counting their category (``a``, as a product of a labelled category) and
        not (``b``, as one of a category nobody labelled); ``(m - b) / (a - b)``, in [0, 1]."""
        import numpy as np

        labelled = np.zeros(len(self.ids), dtype=bool)
        own = [self.position[c] for c in self.labels]
        labelled[own] = True
        _, examples = await self._zero_shot(np.asarray(await self.context.example_index().matrix()))
        with_own = (examples * labelled).sum(axis=1)
        without_own = with_own - examples[np.arange(len(own)), own]
        _, run = await self._zero_shot(np.stack(vectors))
        a, b, m = with_own.mean(), without_own.mean(), (run * labelled).sum(axis=1).mean()
        return float(np.clip((m - b) / (a - b), 0.0, 1.0)) if a > b else 0.0

    # -- the experts, for a batch of query vectors ---------------------------------------------

    async def similarities(self, queries: Matrix) -> Scores:
        """Cosine similarity of each query to each of ``ids``."""
        import numpy as np

        sims = await self.context.category_index().similarities(queries)
        if self._beneath:
            extra = [sims[:, rows].max(axis=1) for rows in self._beneath.values()]
            sims = np.column_stack([sims, *extra])
        return sims

    async def rows(
        self,
        queries: Matrix,
        *,
        exclude: Sequence[int] | None = None,
        heads: Heads | None = None,
    ) -> ExpertRows:
        """Every expert for ``queries``; ``exclude[i]``: an example row query ``i`` may not see
        (itself, in cross-validation); ``heads``: others than those of all examples."""
        sims, zero_shot = await self._zero_shot(queries)
        examples = await self.context.example_index().wide()
        knn = self._knn(queries, examples, sims, exclude)
        chosen = heads if heads is not None else await self.heads()
        return ExpertRows(
            sims,
            zero_shot,
            knn,
            self._supervised(queries, zero_shot, chosen.leaf),
            None
            if chosen.top_level is None
            else self._top_level(queries, zero_shot, chosen.top_level),
        )

    async def supervised(self, queries: Matrix) -> Scores:
        """The supervised expert alone (the top-level head is not trained)."""
        _, zero_shot = await self._zero_shot(queries)
        return self._supervised(queries, zero_shot, await self.head())

    async def _zero_shot(self, queries: Matrix) -> tuple[Scores, Scores]:
        """The similarities of ``queries`` and, from them, the zero-shot expert."""
        sims = await self.similarities(queries)
        return sims, softmax_rows(sims / self.temperature)

    async def knn(self, queries: Matrix) -> Scores:
        """The kNN expert alone (no head is trained)."""
        sims = await self.similarities(queries)
        examples = await self.context.example_index().wide()
        return self._knn(queries, examples, sims, None)

    def outcome(self, row: Scores) -> Outcome:
        """One expert's row as the outcome of a strategy (its ``KEPT`` most likely categories)."""
        import numpy as np

        context = self.context
        top = np.argsort(-row, kind="stable")[:KEPT]
        distribution = {self.ids[i]: float(row[i]) for i in top if row[i] > 0}
        category = context.taxonomy.get(self.ids[int(top[0])])
        return Outcome.unasked(category, distribution, context.embedder().name)

    def _knn(
        self, queries: Matrix, examples: Scores, sims: Scores, exclude: Sequence[int] | None
    ) -> Scores:
        import numpy as np

        k = self.context.options.knn_k
        counts = Counter(self.position[c] for c in self.labels)
        unlabelled = np.array([counts[i] == 0 for i in range(len(self.ids))])
        to_examples = cosine(queries, examples)
        if exclude is not None:
            to_examples[np.arange(len(exclude)), list(exclude)] = -np.inf
        out = np.zeros((len(to_examples), len(self.ids)))
        for row in range(len(to_examples)):
            near = [j for j in np.argsort(-to_examples[row], kind="stable")[:k]]
            votes = [
                (self.position[self.labels[j]], float(to_examples[row, j]))
                for j in near
                if np.isfinite(to_examples[row, j])
            ]
            own = unlabelled
            if exclude is not None:
                # Held out, an example's category may have no other example: as for a product
                # of a category nobody labelled, its path text then votes for it.
                left_out = self.position[self.labels[exclude[row]]]
                if counts[left_out] == 1:
                    own = unlabelled.copy()
                    own[left_out] = True
            if own.any():
                candidates = np.where(own)[0]
                best = candidates[np.argsort(-sims[row, candidates], kind="stable")[:k]]
                votes += [(int(i), float(sims[row, i])) for i in best]
            votes = sorted(votes, key=lambda v: -v[1])[:k]
            top = votes[0][1]
            for i, sim in votes:
                out[row, i] += math.exp((sim - top) / self.temperature)
            out[row] /= out[row].sum()
        return out

    def _supervised(self, queries: Matrix, zero_shot: Scores, head: SupervisedHead) -> Scores:
        import numpy as np

        columns = [self.position[c] for c in head.classes]
        unlabelled = np.ones(len(self.ids), dtype=bool)
        unlabelled[columns] = False
        kept = zero_shot * unlabelled  # the leaves without examples keep their zero-shot mass
        out = np.array(kept)
        out[:, columns] += head.predict(queries) * (1.0 - kept.sum(axis=1, keepdims=True))
        return out

    def _top_level(self, queries: Matrix, zero_shot: Scores, head: SupervisedHead) -> Scores:
        """Each of ``ids`` given its top level's probability: the head's, or for a top level
        without examples its zero-shot mass (the head shares the rest)."""
        import numpy as np

        index, member = self._top_membership
        by_top = zero_shot @ member  # zero-shot mass of each top level
        learned = [index[c] for c in head.classes]
        unlearned = np.ones(len(index), dtype=bool)
        unlearned[learned] = False
        out = by_top * unlearned
        out[:, learned] += head.predict(queries) * (1.0 - out.sum(axis=1, keepdims=True))
        spread: Scores = out @ member.T
        return spread

    @functools.cached_property
    def _top_membership(self) -> tuple[dict[str, int], Scores]:
        """Each top level's column, and the (ids x top levels) 0/1 matrix of who is beneath."""
        import numpy as np

        index = {t: i for i, t in enumerate(sorted(set(self.top_of)))}
        member = np.zeros((len(self.ids), len(index)))
        member[np.arange(len(self.ids)), [index[t] for t in self.top_of]] = 1.0
        return index, member

    def pooled(self, rows: ExpertRows, row: int) -> tuple[list[str], dict[str, dict[str, float]]]:
        """The candidates of one product (see the module docstring) and each expert's
        distribution over them."""
        import numpy as np

        k = self.context.options.shortlist_k
        chosen = {
            *np.argsort(-rows.similarity[row], kind="stable")[:k].tolist(),
            *np.nonzero(rows.knn[row])[0].tolist(),
            *np.argsort(-rows.supervised[row], kind="stable")[:k].tolist(),
        }
        order = sorted(chosen, key=lambda i: (-rows.similarity[row, i], i))
        ids = [self.ids[i] for i in order]
        sims = rows.similarity[row, order] / self.temperature
        experts = {
            "embedding": dict(zip(ids, softmax_rows(sims[None, :])[0].tolist(), strict=True)),
            "knn": _normalised(ids, rows.knn[row, order]),
            "supervised": _normalised(ids, rows.supervised[row, order]),
        }
        if rows.top_level is not None:
            experts["top_level"] = _normalised(ids, rows.top_level[row, order])
        return ids, experts

    # -- the supervised heads -----------------------------------------------------------------

    async def head(self) -> SupervisedHead:
        """The head over the examples' categories, trained on every example: from the cache
        folder, else trained once."""
        return await self._trained(self._slots["leaf"])

    async def heads(self) -> Heads:
        """The heads of every example (the top-level one when it is used)."""
        top = self._slots.get("top_level")
        return Heads(await self.head(), None if top is None else await self._trained(top))

    async def _regularisation(self, slot: _HeadSlot) -> float:
        """A head's ``C``, chosen once on a held-out fifth of the examples
        (``supervised.choose_c``)."""
        return await slot.c.get(lambda: self._choose_c(slot))

    async def _choose_c(self, slot: _HeadSlot) -> float:
        vectors = await self.context.example_index().matrix()
        c, scores = await asyncio.to_thread(choose_c, vectors, slot.labels)
        if scores:
            log.info(
                "%s: C=%g (held-out accuracy %s)",
                slot.what,
                c,
                ", ".join(f"C={k:g} {v:.3f}" for k, v in scores.items()),
            )
        return c

    async def _trained(self, slot: _HeadSlot) -> SupervisedHead:
        return await slot.head.get(lambda: self._load_or_train(slot))

    async def _load_or_train(self, slot: _HeadSlot) -> SupervisedHead:
        vectors = await self.context.example_index().matrix()
        name = self.context.embedder().name
        folder = self.context.cache_folder("heads")
        # The choice of C is keyed by the data alone, so a cached head skips it.
        key = data_digest(vectors, slot.labels, name, 0.0)
        file = folder / f"{key}.npz" if folder else None
        if file is not None and file.exists():
            return SupervisedHead.load(file)
        c = await self._regularisation(slot)
        head = await asyncio.to_thread(
            SupervisedHead.train, vectors, slot.labels, embedder=name, c=c
        )
        if file is not None:
            head.save(file)
        return head

    # -- trust fitted on the examples -------------------------------------------------------

    async def cross_validate(
        self, ask_model: AskModel | None = None, model_budget: int = 0
    ) -> tuple[list[FitItem], dict[str, float]]:
        """Each example (a seeded sample of at most ``FIT_EXAMPLES``) judged by the experts
        that did not learn from it, as fit items; and each expert's accuracy on them. With
        ``ask_model``, the first ``model_budget`` of them are also asked of the LLM and only those
        are returned (every expert must judge every item of a fit)."""
        import numpy as np

        vectors = np.asarray(await self.context.example_index().matrix())
        everyone = list(range(len(self.labels)))
        sample = sorted(random.Random(0).sample(everyone, min(FIT_EXAMPLES, len(everyone))))
        if ask_model is not None:
            sample = sample[: max(model_budget, 0)]
        folds = [sample[f::FOLDS] for f in range(FOLDS)]
        name = self.context.embedder().name
        rows_of: dict[int, tuple[ExpertRows, int]] = {}
        for fold in folds:
            if not fold:
                continue
            held = set(fold)
            train = [i for i in everyone if i not in held]
            if not train:
                continue
            trained = [
                await asyncio.to_thread(
                    SupervisedHead.train,
                    vectors[train],
                    [slot.labels[i] for i in train],
                    embedder=name,
                    c=await self._regularisation(slot),
                )
                for slot in self._slots.values()
            ]
            heads = Heads(trained[0], trained[1] if len(trained) > 1 else None)
            rows = await self.rows(vectors[fold], exclude=fold, heads=heads)
            rows_of.update({i: (rows, r) for r, i in enumerate(fold)})
        items: list[FitItem] = []
        for i in sample:
            if i not in rows_of:
                continue
            rows, r = rows_of[i]
            ids, experts = self.pooled(rows, r)
            if ask_model is not None:
                asked = await ask_model(self.context.examples[i].product, ids)
                if asked is None:
                    continue
                experts["llm"] = asked
            items.append((experts, self.labels[i]))
        return items, expert_accuracy(items)


def fit_on_examples(
    items: Sequence[FitItem],
    accuracy: Mapping[str, float],
    *,
    base: TrustFit,
    what: str,
    taxonomy: str,
) -> TrustFit:
    """Weights fitted on cross-validated ``items``; ``base``'s weights for experts left out.
    ``auto`` decides from the measurement: when one expert alone was more accurate than the
    fusion, that expert alone is kept. The review threshold is measured on the same items."""
    names = sorted({n for experts, _ in items for n in experts})
    weights = fit_weights(items, names)
    fused = expert_accuracy(items, weights)["fused"]
    best = max(names, key=lambda n: accuracy[n])
    note = f"{what}; cross-validated accuracy " + ", ".join(f"{n} {accuracy[n]:.3f}" for n in names)
    if accuracy[best] > fused:
        weights = {n: (weights[n] if n == best else 0.0) for n in names}
        note += f", fused {fused:.3f}: {best} alone kept"
    else:
        note += f", fused {fused:.3f}"
    pooled = [log_linear_pool(experts, weights) for experts, _ in items]
    threshold = review_threshold(
        [max(p.values()) for p in pooled],
        [max(p, key=p.__getitem__) == gold for p, (_, gold) in zip(pooled, items, strict=True)],
    )
    return TrustFit(
        weights={**base.weights, **weights},
        review_threshold=threshold,
        model=base.model,
        prompt_version=base.prompt_version,
        embedder=base.embedder,
        fitted_on=note,
        taxonomy=taxonomy,
        items=len(items),
        nll_neutral=mean_nll(items, dict.fromkeys(names, 1.0)),
        nll_fitted=mean_nll(items, weights),
        name="examples",
    )


def expert_accuracy(
    items: Sequence[FitItem], weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Top-1 accuracy of each expert over ``items`` (and of their pool with ``weights``)."""
    names = sorted({n for experts, _ in items for n in experts})
    hits = dict.fromkeys([*names, "fused"], 0)
    for experts, gold in items:
        for n in names:
            hits[n] += max(experts[n], key=experts[n].__getitem__) == gold
        if weights is not None:
            pooled = log_linear_pool(experts, weights)
            hits["fused"] += max(pooled, key=pooled.__getitem__) == gold
    total = max(len(items), 1)
    return {n: h / total for n, h in hits.items()}


def examples_digest(context: StrategyContext, *parts: str) -> str:
    """What a fit on the examples is keyed by: their texts and labels, the embedder, options that
    shape the experts, and ``parts``."""
    from llmcat.embeddings import product_text

    blob = hashlib.sha256()
    for e in context.examples:
        blob.update(f"{product_text(e.product)}\t{e.category.id}\n".encode())
    o = context.options
    shape = [context.embedder().name, o.knn_k, o.shortlist_k, FIT_EXAMPLES, FIT_VERSION]
    shape += list(parts)
    blob.update(json.dumps(shape).encode())
    return blob.hexdigest()[:16]


def softmax_rows(scores: Scores) -> Scores:
    """Row-wise softmax."""
    import numpy as np

    shifted = scores - scores.max(axis=-1, keepdims=True)
    exps = np.exp(shifted)
    rows: Scores = exps / exps.sum(axis=-1, keepdims=True)
    return rows


def _normalised(ids: list[str], values: Scores) -> dict[str, float]:
    total = float(values.sum())
    if total <= 0:
        return {cid: 1.0 / len(ids) for cid in ids}
    return {cid: float(v) / total for cid, v in zip(ids, values, strict=True)}


__all__ = [
    "ExampleExperts",
    "ExpertRows",
    "LearnedStrategy",
    "expert_accuracy",
    "fit_on_examples",
]
