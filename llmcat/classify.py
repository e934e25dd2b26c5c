"""``Classifier``: put products into categories of a taxonomy with a zero-shot LLM.

How the taxonomy is searched is a strategy (``llmcat.strategies``); the options are
``ClassifyOptions``; running items (order, concurrency, error records, blocking twins) is the
``ItemRunner``'s. What is left here: building those from the caller's arguments, and turning a
strategy's ``Outcome`` into a ``Classification`` (temperature scaling, alternatives, review flag).

Every answer passes ``labels.match_label`` against the candidates the model was shown; a label
outside the taxonomy is never returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from . import strategies
from .backends import Backend
from .calibration import TemperatureScaling
from .columns import Columns
from .embeddings import HASHING, Embedder, HashingEmbedder, local_embedder_available
from .engine import Engine, split_overrides
from .errors import ConfigError
from .examples import load_examples
from .options import ClassifyOptions, with_overrides
from .prompts import PromptTemplate
from .runner import Item, ItemRunner, ProductLike, error_record
from .settings import Settings
from .strategies import Outcome, Strategy, StrategyContext
from .tables import CLASSIFICATION_COLUMNS, frame_records, with_results
from .taxonomy import Taxonomy
from .trust import TrustFit, shipped_fit
from .types import Alternative, Classification, Product

__all__ = ["Classifier", "load_calibration"]

#: Items in flight for strategies that make no model calls (embedding, knn), unless configured.
EMBEDDING_CONCURRENCY = 64


class Classifier:
    """Classify products into a taxonomy.

    ``taxonomy`` is a ``Taxonomy`` or a list of labels. ``examples`` are labelled products for
    the ``knn`` strategy (see ``llmcat.examples.load_examples``). ``options`` is a
    ``ClassifyOptions``;
    keyword arguments name its fields (``strategy="hierarchical", beam=3``) or those of
    ``Settings`` (``base_url=``, ``model=``, ``api_key=``, ``cache=``, ``concurrency=``...). The
    backend comes from ``backend`` (an instance or a name), else from the settings, else from
    ``LLMCAT_*`` environment variables, else the embedded local model.
    """

    def __init__(
        self,
        taxonomy: Taxonomy | Sequence[str],
        options: ClassifyOptions | None = None,
        *,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        examples: Any = None,
        **overrides: Any,
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
        self.engine = Engine(backend=backend, settings=settings, overrides=connection)
        labelled = load_examples(examples, self.taxonomy) if examples is not None else []
        has_embedder = (
            embedder is not None
            or self.options.embedding_model is not None
            or local_embedder_available()
        )
        if not has_embedder and self.options.strategy == "auto" and self._lexical_measured():
            # Measured for this model and template (a shipped fit): a shortlist over the lexical
            # embedder beats its hierarchical walk (README, "What to expect").
            self.options = self.options.model_copy(update={"embedding_model": HASHING})
            has_embedder = True
        self.context = StrategyContext(
            self.taxonomy, self.options, self.engine, embedder, examples=labelled
        )
        strategy_class = strategies.resolve(
            self.options.strategy,
            self.taxonomy,
            self.options,
            embedder_available=has_embedder,
            has_examples=bool(labelled),
        )
        self.strategy: str = strategy_class.name
        self._strategy: Strategy = strategy_class(self.context)
        self.runner = ItemRunner(
            self.engine,
            release=[self.context.release_loop_resources],
            # Without model calls the work is embedding lookups: batch them, whatever backend.
            concurrency=None if strategy_class.uses_model else EMBEDDING_CONCURRENCY,
        )
        self.context.concurrency = self.runner.concurrency
        if self.scaling is not None and self.scaling.strategy not in (None, self.strategy):
            raise ConfigError(
                f"the calibration was fitted for the {self.scaling.strategy!r} strategy, this "
                f"classifier uses {self.strategy!r}; fit one for it with 'python -m evals calibrate'"
            )

    def _lexical_measured(self) -> bool:
        """Whether a fit ships for this model and template over the lexical embedder."""
        template = PromptTemplate(self.options.template, self.options.template_dir)
        model = self.engine.backend.model
        return shipped_fit(model, template.version, HashingEmbedder().name) is not None

    @property
    def backend(self) -> Backend:
        """The backend that answers this classifier's model calls."""
        return self.engine.backend

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

    def built_indexes(self) -> dict[str, Any]:
        """The embedding matrices this classifier has built (taxonomy, examples), for workers in
        other processes (``llmcat.ray``) to ``adopt_indexes`` instead of embedding them again."""
        return self.context.built_indexes()

    def adopt_indexes(self, indexes: dict[str, Any]) -> None:
        """Use matrices from ``built_indexes`` of a classifier with the same taxonomy, examples
        and embedder."""
        self.context.adopt_indexes(indexes)

    # -- one product, a stream, a list; blocking twins ----------------------------------------

    async def aclassify(self, product: ProductLike) -> Classification:
        """Classify one product; failures come back as a result with ``error`` set."""
        return await self.runner.one(product, self)

    def classify(self, product: ProductLike) -> Classification:
        """Blocking ``aclassify``."""
        return self.runner.blocking(self.aclassify(product))

    def aiter_classify(
        self, products: Iterable[Item], *, progress: bool | None = None, start: int = 0
    ) -> AsyncIterator[Classification]:
        """One Classification per input, in input order, with bounded concurrency. ``start``:
        the position of the first product (ids default to positions), for a resumed batch."""
        return self.runner.stream(
            products, self, label=f"classify ({self.strategy})", progress=progress, start=start
        )

    async def aclassify_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Classification]:
        """Classify every product; one result (or error record) per input, in order."""
        return await self.runner.collect(
            products, self, label=f"classify ({self.strategy})", progress=progress
        )

    def classify_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Classification]:
        """Blocking ``aclassify_many``."""
        return self.runner.blocking(self.aclassify_many(products, progress=progress))

    def classify_frame(
        self,
        frame: Any,
        *,
        prefix: str = "",
        progress: bool | None = None,
        columns: Columns | None = None,
    ) -> Any:
        """A copy of the pandas DataFrame ``frame`` with each row's result in new columns
        (``category_id``, ``path``, ``confidence``, ``needs_review``, ``alternatives``,
        ``error``; each named ``prefix + name``), same index and order. Without an ``id`` column
        the index is the product id. ``columns`` chooses which columns are which fields and
        which reach the prompt as attributes (default: every column, as given)."""
        results = self.classify_many(frame_records(frame, columns), progress=progress)
        return with_results(frame, results, CLASSIFICATION_COLUMNS, prefix)

    async def aclose(self) -> None:
        """Close the backend's connections, the embedder's and the cache."""
        await self.runner.aclose()

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
            error=error_record(error),
        )

    def result(self, product: Product, outcome: Outcome) -> Classification:
        """A strategy's outcome as a Classification, with temperature scaling applied."""
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
            needs_review=confidence is not None and confidence < self.options.review_threshold,
            stopped_early=outcome.stopped_early,
            experts=outcome.experts,
            trust=outcome.trust,
            strategy=self.strategy,
            model=outcome.model or self.backend.model,
            prompt_version=self.prompt_version,
            taxonomy_version=self.taxonomy.version,
            usage=outcome.usage,
            cached=outcome.cached and outcome.usage.calls == 0,
        )


def load_calibration(calibration: Any) -> TemperatureScaling | None:
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
