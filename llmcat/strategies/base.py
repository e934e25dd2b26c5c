"""What every strategy shares: the ``Strategy`` base class, what it returns (``Outcome``), what it
may use (``StrategyContext``), and ``settle`` for partial-depth answers."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from llmcat.batch.progress import Progress
from llmcat.confidence.distributions import SPREAD_K, similarity_distribution, spread
from llmcat.confidence.trust import TrustFit, shipped_fit
from llmcat.config.options import ClassifyOptions
from llmcat.embeddings import (
    BatchingEmbedder,
    CategoryIndex,
    Embedder,
    GroundedIndex,
    default_embedder,
    product_text,
    with_lexical,
)
from llmcat.embeddings.prototypes import LEARN_MIN, guarded_offsets, neighbour_agreement, refined
from llmcat.learning.examples import Example, ExampleIndex
from llmcat.llm.engine import Engine
from llmcat.llm.once import AsyncOnce
from llmcat.strategies.plan import Facts, Plan, complete
from llmcat.taxonomy.tree import Category, Taxonomy
from llmcat.types import Product, Usage

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix, Vector


@dataclass
class Outcome:
    """What a strategy found for one product, before it becomes a Classification."""

    category: Category
    distribution: dict[str, float] | None = None  # category id -> probability
    usage: Usage = field(default_factory=Usage)
    cached: bool = True
    model: str = ""
    confidence: float | None = None  # None: computed from the distribution by ``settle``
    stopped_early: bool = False
    experts: dict[str, dict[str, float]] | None = None  # each fused expert's distribution
    trust: str = ""  # how the experts were weighted (TrustFit.describe)
    #: the review threshold measured with the weights in force (None: the plan's)
    review_threshold: float | None = None

    @classmethod
    def unasked(
        cls, category: Category, distribution: dict[str, float] | None, model: str
    ) -> Outcome:
        """An outcome no model call went into (embeddings, learned experts, a muted LLM):
        nothing spent, nothing from the cache; ``model`` names what answered (the embedder)."""
        return cls(category, distribution, Usage(), cached=False, model=model)


@dataclass(frozen=True)
class RunObservation:
    """What ``StrategyContext.observe`` read from a sample of the run's products, once."""

    #: the vectors of the sampled products
    vectors: tuple[Vector, ...]
    #: the same vectors by product text: a sampled product is not embedded again when its turn
    #: comes (a run of up to 256 products is embedded once, not twice)
    by_text: Mapping[str, Vector]
    #: the embedding's distribution over each sampled product's ``SPREAD_K`` nearest categories
    #: (empty when no product had a measurable spread)
    distributions: tuple[tuple[float, ...], ...]
    #: the mean embedding spread of the sampled products; None when none had one
    spread: float | None
    #: the run's accuracy estimated from how its sampled products' answers agree with their
    #: neighbours' (``prototypes.neighbour_agreement``); None unless the run was learned from
    agreement: float | None = None


class StrategyContext:
    """What a strategy may use: the taxonomy, the options, the engine (model calls) and the
    embeddings of the taxonomy (built on first use, cached on disk)."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        options: ClassifyOptions,
        engine: Engine,
        embedder: Embedder | None = None,
        examples: Sequence[Example] = (),
        *,
        plan: Plan,
        facts: Facts,
    ) -> None:
        self.taxonomy = taxonomy
        #: decided by the Classifier; final once ``final_plan`` has run
        self.plan = plan
        self.facts = facts
        self._final: AsyncOnce[Plan] = AsyncOnce()
        self.options = options
        self.engine = engine
        self.leaves = taxonomy.leaves()
        self.examples = list(examples)
        #: items in flight together (the worker sets it from its runner)
        self.concurrency = engine.concurrency
        self._example_index: ExampleIndex | None = None
        self._embedder = with_lexical(embedder, options.lexical_weight) if embedder else None
        self._batching: BatchingEmbedder | None = None
        #: called with the size of every batch of product texts embedded together
        self.embed_batch_observers: list[Callable[[int], None]] = []
        self._index: CategoryIndex | None = None
        #: what ``observe`` read from the run, once per context; None until then
        self.run: RunObservation | None = None
        self._run_trust: tuple[TrustFit, TrustFit] | None = None

    def embedder(self) -> Embedder:
        """The embedder (the caller's, else by ``options.embedding_model``), created on first use."""
        if self._embedder is None:
            s = self.engine.settings
            embedder = default_embedder(
                base_url=s.base_url,
                embedding_model=self.plan.embedding_model,
                api_key=s.api_key,
                retry=s.retry,
            )
            self._embedder = with_lexical(embedder, self.options.lexical_weight)
        return self._embedder

    def product_embedder(self) -> Embedder:
        """The embedder of product texts: concurrent items share calls (``embedding_batch``)."""
        if self._batching is None:
            # No more texts can be in flight together than items: with one, nobody waits.
            most = min(self.options.embedding_batch, self.concurrency)
            self._batching = BatchingEmbedder(
                self.embedder(), max_batch=most, observers=self.embed_batch_observers
            )
        return self._batching

    def category_index(self) -> CategoryIndex:
        """Embeddings of every leaf path, cached on disk per taxonomy version and embedder."""
        if self._index is None:
            texts = {c.id: c.embedding_text for c in self.leaves}
            s = self.engine.settings

            def bar(total: int) -> Progress:
                # once per taxonomy and embedder (then cached): minutes for a large one
                label = f"embedding {self.taxonomy.name}'s {total:,} categories"
                return Progress(total, label=label, enabled=s.progress)

            def anchor_bar(total: int) -> Progress:
                label = f"embedding Google's {total:,} categories to ground the labels in"
                return Progress(total, label=label, enabled=s.progress)

            cache_dir = s.cache_dir if s.cache else None
            version = self.taxonomy.version
            if self.plan.label_words == "google":
                self._index = GroundedIndex(
                    self.embedder(),
                    texts,
                    version=version,
                    cache_dir=cache_dir,
                    bar=bar,
                    anchor_bar=anchor_bar,
                )
            else:
                self._index = CategoryIndex(
                    self.embedder(), texts, version=version, cache_dir=cache_dir, bar=bar
                )
        return self._index

    def cache_folder(self, name: str) -> Path | None:
        """``<cache_dir>/<name>`` for derived files (heads, fits), or None with caching off."""
        s = self.engine.settings
        return s.cache_dir / name if s.cache and s.cache_dir is not None else None

    async def final_plan(self) -> Plan:
        """The plan with the model known: a server that names its model is asked once (its
        ``prepare``), then the trust is decided for that model. Every strategy reads its
        weights here."""
        return await self._final.get(self._complete)

    async def _complete(self) -> Plan:
        if self.plan.provisional:
            await self.engine.backend.prepare()
            facts = replace(self.facts, model=self.engine.backend.model)
            self.plan = complete(self.plan, self.options, facts, shipped_fit)
        trust = self.plan.trust
        if self.plan.trust_source == "neutral" and self.options.trust == "auto":
            _say_once(
                (self.plan.model, self.facts.prompt_version),
                f"llmcat: no trust fit for model {self.plan.model!r} (template "
                f"{self.facts.prompt_version}, embedder {self.plan.embedder}): its experts are "
                "weighted equally. Fit the weights on a couple of hundred labelled products: "
                "python -m evals run --strategy shortlist --trust neutral ... --out RUN; "
                "python -m evals fit RUN --out trust.json; then trust='trust.json'",
            )
        assert trust is not None or not self.plan.fused
        return self.plan

    def example_index(self) -> ExampleIndex:
        """The labelled examples' embeddings (computed once, cached on disk)."""
        if self._example_index is None:
            s = self.engine.settings
            self._example_index = ExampleIndex(
                self.embedder(), self.examples, cache_dir=s.cache_dir if s.cache else None
            )
        return self._example_index

    async def embed_product(self, product: Product) -> Vector:
        """The product's vector (batched with concurrent items; a sampled one as observed)."""
        text = product_text(product)
        sampled = self.run.by_text.get(text) if self.run is not None else None
        if sampled is not None:
            return sampled
        vector: Vector = (await self.product_embedder().embed([text]))[0]
        return vector

    async def nearest_leaves(self, product: Product, k: int) -> list[tuple[str, float]]:
        """The ``k`` leaves most similar to the product, ``(id, cosine similarity)``, best first."""
        return await self.category_index().nearest_to(await self.embed_product(product), k)

    async def nearest_distribution(self, vector: Vector) -> dict[str, float]:
        """The embedding's distribution over a product vector's ``SPREAD_K`` nearest categories."""
        nearest = await self.category_index().nearest_to(vector, SPREAD_K)
        return similarity_distribution(nearest, self.embedder().temperature)

    async def spread_of(self, product: Product) -> float | None:
        """How far apart the product's nearest categories lie (``distributions.spread``)."""
        return spread(await self.nearest_distribution(await self.embed_product(product)))

    @property
    def observed(self) -> bool:
        """Whether ``observe`` has read the run."""
        return self.run is not None

    async def observe(self, products: Sequence[Product]) -> RunObservation | None:
        """Read the run from a sample of its products, once (their vectors, the run's spread,
        and the distributions its accuracy is estimated from): later samples change nothing,
        so every item of a run, and every call after it, is scaled alike."""
        if self.run is not None or not products:
            return self.run
        # Before the first result, and seconds to minutes on a CPU: shown, never silent
        label = f"estimating the run's accuracy: embedding {len(products)} of its products"
        bar = Progress(len(products), label=label, enabled=self.engine.settings.progress)

        async def embedded(product: Product) -> Vector:
            vector = await self.embed_product(product)
            bar.advance(1)
            return vector

        try:
            vectors = await asyncio.gather(*map(embedded, products))
            if self.run is not None:  # a concurrent call read it first
                return self.run
            agreement = await self._learn_from(vectors) if self.plan.transductive else None
            found = [await self.nearest_distribution(v) for v in vectors]
        finally:
            bar.close()
        if self.run is not None:
            return self.run
        spreads = [s for d in found if (s := spread(d)) is not None]
        # A run learned from is judged over all its labels when they are fewer than SPREAD_K
        full = min(SPREAD_K, len(self.leaves)) if agreement is not None else SPREAD_K
        self.run = RunObservation(
            vectors=tuple(vectors),
            by_text={product_text(p): v for p, v in zip(products, vectors, strict=True)},
            distributions=tuple(tuple(d.values()) for d in found if len(d) == full)
            if spreads or agreement is not None
            else (),
            spread=sum(spreads) / len(spreads) if spreads else None,
            agreement=agreement,
        )
        return self.run

    async def _learn_from(self, sample: Sequence[Vector]) -> float | None:
        """Move the category vectors toward the ``sample`` of the run's products and offset
        the hubs (``embeddings.prototypes``), once, before any product is judged; return the
        run's accuracy estimated from the sample's answers (``neighbour_agreement``). A sample
        smaller than ``LEARN_MIN`` teaches nothing (None)."""
        import numpy as np

        if len(sample) < LEARN_MIN:
            return None
        index = self.category_index()
        products = np.stack(sample)
        if not index.moved:
            start = np.asarray(await index.matrix(), dtype=np.float64)
            temperature = self.embedder().temperature
            vectors = await asyncio.to_thread(refined, start, products, temperature)
            index.move(vectors, guarded_offsets(vectors, products))
        answers = (await index.similarities(products)).argmax(axis=1)
        return neighbour_agreement(products, answers.tolist())

    def trust_for_run(self, fit: TrustFit, own: Mapping[str, float]) -> TrustFit:
        """``fit`` for this run: at its estimated accuracy when the fit can estimate one from
        the observed sample (``TrustFit.at_run``, computed once), else at the run's spread; a
        product classified before any run was observed uses the spread of its own embedding
        distribution ``own``."""
        if self._run_trust is not None and self._run_trust[0] is fit:
            return self._run_trust[1]
        run = self.run
        if run is not None and run.agreement is not None:
            at_agreement = fit.at_accuracy(run.agreement, run.distributions)
            self._run_trust = (fit, at_agreement)
            return at_agreement
        at_run = fit.at_run(run.distributions if run is not None else ())
        if at_run is not fit:
            self._run_trust = (fit, at_run)
            return at_run
        run_spread = run.spread if run is not None else None
        return fit.at_spread(run_spread if run_spread is not None else spread(own))

    def built_indexes(self) -> dict[str, Matrix]:
        """The embedding matrices built so far (``categories``, ``examples``), for other
        processes to ``adopt_indexes`` instead of embedding the same texts again."""
        built = {
            "categories": self._index.built if self._index is not None else None,
            "examples": self._example_index.built if self._example_index is not None else None,
        }
        return {name: matrix for name, matrix in built.items() if matrix is not None}

    def adopt_indexes(self, indexes: Mapping[str, Matrix]) -> None:
        """Use matrices from ``built_indexes`` of a context with the same taxonomy, examples and
        embedder."""
        if "categories" in indexes:
            self.category_index().adopt(indexes["categories"])
        if "examples" in indexes:
            self.example_index().adopt(indexes["examples"])

    async def release_loop_resources(self) -> None:
        """Close the embedder's loop-bound connections (see ``Backend``)."""
        if self._embedder is not None:
            await self._embedder.release_loop_resources()


_said: set[tuple[str, str]] = set()


def _say_once(key: tuple[str, str], message: str) -> None:
    """Log ``message`` as a warning the first time this process meets ``key``."""
    if key not in _said:
        _said.add(key)
        logging.getLogger("llmcat").warning(message)


class Strategy(abc.ABC):
    """How a product is put into the taxonomy. A subclass in a module of ``llmcat.strategies``
    decorated with ``@register`` is a new ``strategy=`` value, in the CLI and the evals too."""

    #: the ``strategy=`` name
    name: ClassVar[str]
    #: one line for ``--help``
    summary: ClassVar[str] = ""
    #: whether it asks the LLM; one that does not is not held to the backend's concurrency
    uses_model: ClassVar[bool] = True
    #: whether it embeds products (the plan names its embedder)
    uses_embedder: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        self.context = context

    @classmethod  # noqa: B027 - an optional hook, empty on purpose
    def check(cls, taxonomy: Taxonomy, options: ClassifyOptions) -> None:
        """Raise ConfigError when this strategy cannot serve ``taxonomy`` with ``options``."""

    @classmethod
    def for_plan(cls, plan: Plan) -> type[Strategy]:
        """The class that carries out ``plan`` (a variant of this one, e.g. fused)."""
        return cls

    @property
    @abc.abstractmethod
    def prompt_version(self) -> str:
        """What identifies the prompts (or the embedder) behind the answers, for results,
        baselines and calibration files."""

    @abc.abstractmethod
    async def run(self, product: Product) -> Outcome:
        """The outcome for one clean product; raise llmcat errors on failure."""


def settle(outcome: Outcome, taxonomy: Taxonomy, min_confidence: float | None) -> Outcome:
    """Fill in the confidence of the chosen category from the distribution (the mass of every
    candidate beneath it) and, with ``min_confidence``, stop at the deepest ancestor whose mass
    reaches it."""
    if outcome.distribution is None:
        return outcome
    chain = taxonomy.ancestors(outcome.category.id)
    mass = ancestor_mass(outcome.distribution, chain, taxonomy)
    outcome.confidence = mass[outcome.category.id]
    if min_confidence is None or outcome.confidence >= min_confidence:
        return outcome
    confident = [node for node in chain if mass[node.id] >= min_confidence]
    stop = confident[-1] if confident else chain[0]
    outcome.category, outcome.confidence, outcome.stopped_early = stop, mass[stop.id], True
    return outcome


def ancestor_mass(
    distribution: Mapping[str, float], chain: Sequence[Category], taxonomy: Taxonomy
) -> dict[str, float]:
    """For each node of ``chain``, the summed probability of the candidates beneath it."""
    mass = {node.id: 0.0 for node in chain}
    for cid, p in distribution.items():
        for node in taxonomy.ancestors(cid):  # each candidate's ancestors once
            if node.id in mass:
                mass[node.id] += p
    return mass
