"""``Classifier``: put products into categories of a taxonomy with a zero-shot LLM.

Strategies (``strategy=``; ``auto`` picks by taxonomy size):

- ``flat``: every leaf path in one constrained choice. For small label sets (auto: <= 50 leaves).
- ``hierarchical``: top-down, one constrained choice among the children per level, keeping a beam
  of the ``beam`` most probable partial paths.
- ``shortlist``: embed the product and every leaf path (cached on disk), take the ``shortlist_k``
  nearest leaves, then one constrained choice among them. (auto, when an embedder is available)
- ``embedding``: the nearest leaf by embedding alone, no LLM: the baseline every report shows.

Every answer passes ``labels.match_label`` against the candidates the model was shown; an
unconstrained server gets one re-ask, and an answer that still names none becomes an error record.
A label outside the taxonomy is never returned. With a distribution over the candidates (logprobs),
``min_confidence`` makes the answer stop at the deepest ancestor whose probability reaches it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .backends import Backend
from .backends.base import ChoiceConstraint, Completion, CompletionRequest, Message, Sampling
from .batch import map_ordered
from .calibration import TemperatureScaling
from .confidence import choice_distribution
from .embeddings import CategoryIndex, Embedder, default_embedder, local_embedder_available
from .engine import Engine, error_record
from .errors import ConfigError, InputError, LlmcatError, OutputError
from .inputs import coerce_product
from .labels import match_label
from .prompts import PromptTemplate
from .settings import Settings
from .taxonomy import Category, Taxonomy
from .types import Alternative, Classification, Product, Usage

ProductLike = Product | str | Mapping[str, Any]
Strategy = Literal["auto", "flat", "hierarchical", "shortlist", "embedding"]
STRATEGIES = ("flat", "hierarchical", "shortlist", "embedding")

#: ``auto`` uses ``flat`` up to this many leaves.
FLAT_AUTO_LIMIT = 50
#: ``flat`` refuses more leaves than this: the prompt would not fit most context windows.
FLAT_HARD_LIMIT = 2000
#: Temperature that turns cosine similarities into a distribution for the ``embedding`` strategy.
EMBEDDING_TEMPERATURE = 0.05
#: The content-free input scored for contextual calibration.
CONTENT_FREE = Product(id="content-free", title="N/A")

__all__ = ["STRATEGIES", "Classifier", "error_record"]


@dataclass
class Choice:
    """The result of one constrained choice among candidate categories."""

    category: Category
    distribution: dict[str, float] | None  # category id -> probability among the candidates
    usage: Usage
    cached: bool
    model: str


@dataclass
class Outcome:
    """What a strategy found for one product, before it becomes a Classification."""

    category: Category
    distribution: dict[str, float] | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = True
    model: str = ""
    confidence: float | None = None
    stopped_early: bool = False


class Classifier:
    """Classify products into a taxonomy.

    ``taxonomy`` is a ``Taxonomy`` or a list of labels. The backend comes from ``backend`` (an
    instance or a name), else from ``base_url``/``model``/``api_key``, else from ``LLMCAT_*``
    environment variables, else the embedded local model.
    """

    def __init__(
        self,
        taxonomy: Taxonomy | Sequence[str],
        *,
        backend: Backend | str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        cache: bool | None = None,
        concurrency: int | None = None,
        strategy: Strategy = "auto",
        beam: int = 2,
        shortlist_k: int = 10,
        embedder: Embedder | None = None,
        embedding_model: str | None = None,
        min_confidence: float | None = None,
        review_threshold: float = 0.5,
        calibration: Literal["contextual"] | TemperatureScaling | str | Path | None = None,
        fuse_embedding: bool = True,
        template_dir: str | Path | None = None,
        template: str = "classify.j2",
        step_template: str = "classify_step.j2",
        description_chars: int = 300,
        attribute_limit: int = 10,
    ) -> None:
        self.taxonomy = (
            taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.from_labels(list(taxonomy))
        )
        for name, value in (
            ("review_threshold", review_threshold),
            ("min_confidence", min_confidence),
        ):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be within [0, 1], got {value}")
        if beam < 1 or shortlist_k < 1:
            raise ConfigError("beam and shortlist_k must be at least 1")
        if isinstance(calibration, (str, Path)) and calibration != "contextual":
            if not Path(calibration).is_file():
                raise ConfigError(
                    f"unknown calibration {calibration!r}: use 'contextual', a TemperatureScaling, "
                    "or the path of a file from 'python -m evals calibrate'"
                )
            calibration = TemperatureScaling.load(calibration)
        self.engine = Engine(
            backend=backend,
            settings=settings,
            overrides={
                "base_url": base_url,
                "model": model,
                "api_key": api_key,
                "cache": cache,
                "concurrency": concurrency,
            },
        )
        self.template = PromptTemplate(template, template_dir)
        self.step_template = PromptTemplate(step_template, template_dir)
        self.review_threshold = review_threshold
        self.min_confidence = min_confidence
        self.calibration = calibration
        self.temperature_scaling = (
            calibration if isinstance(calibration, TemperatureScaling) else None
        )
        self.fuse_embedding = fuse_embedding
        self.beam = beam
        self.shortlist_k = shortlist_k
        self.description_chars = description_chars
        self.attribute_limit = attribute_limit
        self._leaves = self.taxonomy.leaves()
        self._embedder = embedder
        self._embedding_model = embedding_model
        self._index: CategoryIndex | None = None
        self.strategy = self._pick_strategy(strategy)
        scaling = self.temperature_scaling
        if scaling is not None and scaling.strategy and scaling.strategy != self.strategy:
            raise ConfigError(
                f"the calibration was fitted for the {scaling.strategy!r} strategy, this "
                f"classifier uses {self.strategy!r}; fit one for it with 'python -m evals calibrate'"
            )

    def _pick_strategy(self, strategy: str) -> str:
        if strategy == "auto":
            if len(self._leaves) <= FLAT_AUTO_LIMIT:
                return "flat"
            if self._embedder is not None or self._embedding_model or local_embedder_available():
                return "shortlist"
            return "hierarchical"
        if strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {strategy!r}; use auto or one of {', '.join(STRATEGIES)}"
            )
        if strategy == "flat" and len(self._leaves) > FLAT_HARD_LIMIT:
            raise ConfigError(
                f"{len(self._leaves)} labels are too many for one prompt (flat takes up to "
                f"{FLAT_HARD_LIMIT}); use strategy='shortlist' or 'hierarchical'"
            )
        return strategy

    @property
    def backend(self) -> Backend:
        return self.engine.backend

    @property
    def prompt_version(self) -> str:
        """The version of the template(s) this strategy renders."""
        if self.strategy == "hierarchical":
            return self.step_template.version
        if self.strategy == "embedding":
            return f"embedding:{self.embedder().name}"
        return self.template.version

    def embedder(self) -> Embedder:
        """The embedder of the shortlist and embedding strategies, created on first use."""
        if self._embedder is None:
            s = self.engine.settings
            self._embedder = default_embedder(
                base_url=s.base_url, embedding_model=self._embedding_model, api_key=s.api_key
            )
        return self._embedder

    def category_index(self) -> CategoryIndex:
        """Embeddings of every leaf path, cached on disk per taxonomy version and embedder."""
        if self._index is None:
            texts = {c.id: c.path_text for c in self._leaves}
            cache_dir = self.engine.settings.cache_dir if self.engine.settings.cache else None
            self._index = CategoryIndex(
                self.embedder(), texts, version=self.taxonomy.version, cache_dir=cache_dir
            )
        return self._index

    # -- one product ----------------------------------------------------------------------------

    async def aclassify(self, product: ProductLike) -> Classification:
        """Classify one product; failures come back as a result with ``error`` set."""
        return await self._classify_item(product, 0)

    def classify(self, product: ProductLike) -> Classification:
        """Blocking ``aclassify``."""
        return self.engine.run(self.aclassify(product), self._release_embedder)

    # -- batches --------------------------------------------------------------------------------

    async def aiter_classify(
        self, products: Iterable[ProductLike | InputError], *, progress: bool | None = None
    ) -> AsyncIterator[Classification]:
        """Yield one Classification per input, in input order, with bounded concurrency."""
        total = len(products) if isinstance(products, Sequence) else None
        bar = self.engine.progress(total, f"classify ({self.strategy})", progress)
        concurrency = self.engine.concurrency
        try:
            async for result in map_ordered(self._classify_item, products, concurrency=concurrency):
                bar.update(error=result.error is not None, cached=result.cached)
                yield result
        finally:
            bar.close()

    async def aclassify_many(
        self, products: Iterable[ProductLike | InputError], *, progress: bool | None = None
    ) -> list[Classification]:
        """Classify every product; one result (or error record) per input, in order."""
        return [r async for r in self.aiter_classify(products, progress=progress)]

    def classify_many(
        self, products: Iterable[ProductLike | InputError], *, progress: bool | None = None
    ) -> list[Classification]:
        """Blocking ``aclassify_many``."""
        return self.engine.run(
            self.aclassify_many(products, progress=progress), self._release_embedder
        )

    async def _release_embedder(self) -> None:
        if self._embedder is not None:
            await self._embedder.release_loop_resources()

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.backend.aclose()
        await self._release_embedder()
        if self.engine.cache is not None:
            self.engine.cache.close()

    # -- per item -------------------------------------------------------------------------------

    async def _classify_item(self, item: ProductLike | InputError, index: int) -> Classification:
        product_id = _item_id(item, index)
        try:
            if isinstance(item, InputError):
                raise item
            product = coerce_product(item, index)
            product_id = product.id
            outcome = await self._run_strategy(product)
            return self._result(product, outcome)
        except ConfigError:
            raise  # the caller's setup is wrong for every item: stop and say so
        except LlmcatError as exc:
            return self._failed(product_id, exc)
        except Exception as exc:  # a batch never dies because of one item, even on a bug
            return self._failed(product_id, exc)

    async def _run_strategy(self, product: Product) -> Outcome:
        if self.strategy == "hierarchical":
            return await self._hierarchical(product)
        if self.strategy == "embedding":
            return await self._embedding(product)
        if self.strategy == "flat":
            return self._settle(await self.choose(product, self._leaves))
        nearest = await self.category_index().nearest(product_text(product), self.shortlist_k)
        choice = await self.choose(product, [self.taxonomy.get(cid) for cid, _ in nearest])
        if self.fuse_embedding and choice.distribution is not None:
            fused = product_of_experts(choice.distribution, similarity_distribution(nearest))
            choice.distribution = fused
            choice.category = self.taxonomy.get(max(fused, key=fused.__getitem__))
        return self._settle(choice)

    def _settle(self, choice: Choice) -> Outcome:
        """Apply ``min_confidence``: stop at the deepest ancestor whose probability reaches it."""
        outcome = Outcome(
            category=choice.category,
            distribution=choice.distribution,
            usage=choice.usage,
            cached=choice.cached,
            model=choice.model,
        )
        if choice.distribution is None:
            return outcome
        chain = self.taxonomy.ancestors(choice.category.id)
        # Each candidate's ancestors once; a node's mass is the sum over candidates beneath it.
        mass = {node.id: 0.0 for node in chain}
        for cid, p in choice.distribution.items():
            for node in self.taxonomy.ancestors(cid):
                if node.id in mass:
                    mass[node.id] += p
        outcome.confidence = mass[choice.category.id]
        if self.min_confidence is None or outcome.confidence >= self.min_confidence:
            return outcome
        confident = [node for node in chain if mass[node.id] >= self.min_confidence]
        stop = confident[-1] if confident else chain[0]
        outcome.category, outcome.confidence, outcome.stopped_early = stop, mass[stop.id], True
        return outcome

    async def _embedding(self, product: Product) -> Outcome:
        nearest = await self.category_index().nearest(product_text(product), self.shortlist_k)
        distribution = similarity_distribution(nearest)
        best = self.taxonomy.get(nearest[0][0])
        choice = Choice(best, distribution, Usage(), cached=False, model=self.embedder().name)
        return self._settle(choice)

    async def _hierarchical(self, product: Product) -> Outcome:
        # Each beam entry: (node or None for the root, probability of the path, stopped early)
        beams: list[tuple[Category | None, float, bool]] = [(None, 1.0, False)]
        usage, cached, model, has_probs = Usage(), True, self.backend.model, True
        while True:
            expanded: list[tuple[Category | None, float, bool]] = []
            for node, prob, stopped in beams:
                children = self.taxonomy.children(node.id if node else None)
                if stopped or not children:
                    expanded.append((node, prob, stopped))
                    continue
                choice = await self.choose(product, children, step=node)
                usage, cached, model = usage + choice.usage, cached and choice.cached, choice.model
                if choice.distribution is None:
                    has_probs = False
                    expanded.append((choice.category, prob, False))
                    continue
                ranked = sorted(choice.distribution.items(), key=lambda kv: -kv[1])[: self.beam]
                for cid, q in ranked:
                    low = self.min_confidence is not None and q < self.min_confidence
                    if low and node is not None:
                        expanded.append((node, prob, True))  # the child is unclear: stop here
                    else:
                        expanded.append((self.taxonomy.get(cid), prob * q, False))
            expanded.sort(key=lambda b: -b[1])
            beams = _dedupe(expanded)[: self.beam]
            if all(
                stopped or not self.taxonomy.children(n.id if n else None)
                for n, _, stopped in beams
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

    def _result(self, product: Product, outcome: Outcome) -> Classification:
        alternatives = []
        distribution, confidence = outcome.distribution, outcome.confidence
        scaling = self.temperature_scaling
        if scaling is not None:
            distribution = scaling.distribution(distribution) if distribution else distribution
            confidence = scaling.confidence(confidence) if confidence is not None else None
        if distribution is not None:
            ranked = sorted(distribution.items(), key=lambda kv: -kv[1])[:5]
            for cid, probability in ranked:
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
            needs_review=confidence is not None and confidence < self.review_threshold,
            stopped_early=outcome.stopped_early,
            strategy=self.strategy,
            model=outcome.model or self.backend.model,
            prompt_version=self.prompt_version,
            usage=outcome.usage,
            cached=outcome.cached and outcome.usage.calls == 0,
        )

    def _failed(self, product_id: str, exc: BaseException) -> Classification:
        return Classification(
            product_id=product_id,
            strategy=self.strategy,
            model=self.backend.model,
            prompt_version=self.prompt_version,
            error=error_record(exc),
        )

    # -- one constrained choice -----------------------------------------------------------------

    async def choose(
        self, product: Product, candidates: Sequence[Category], *, step: Category | None = None
    ) -> Choice:
        """One constrained choice among ``candidates``, re-asking once if the answer is unusable.

        ``step`` set means a hierarchical step below that node: candidates are shown by name,
        with the product before them so that every level re-uses the cached product prefix.
        """
        hierarchical = step is not None or self.strategy == "hierarchical"
        by_label = {(c.name if hierarchical else c.path_text): c for c in candidates}
        labels = list(by_label)
        request = self._request(product, labels, hierarchical, step)
        completion = await self._ask(request, labels)
        usage = _usage(completion)
        cached = completion.cached
        label = match_label(completion.text, labels)
        if label is None:
            retry = request.model_copy(
                update={"messages": [*request.messages, *_reask_messages(completion.text, labels)]}
            )
            completion = await self._ask(retry, labels)
            usage, cached = usage + _usage(completion), cached and completion.cached
            label = match_label(completion.text, labels)
        if label is None:
            raise OutputError(
                f"the model answered {completion.text[:80]!r}, which is not one of the "
                f"{len(labels)} allowed categories",
                raw=completion.text,
            )
        distribution = None
        if completion.text == label:
            by_text = choice_distribution(completion, labels)
            if by_text is not None and self.calibration == "contextual":
                prior_request = self._request(CONTENT_FREE, labels, hierarchical, step)
                prior_completion = await self._ask(prior_request, labels)
                usage = usage + _usage(prior_completion)
                prior = choice_distribution(prior_completion, labels)
                if prior is not None:
                    by_text = contextual_calibrate(by_text, prior)
                    label = max(by_text, key=by_text.__getitem__)
            if by_text is not None:
                distribution = {by_label[k].id: v for k, v in by_text.items() if k in by_label}
        return Choice(
            category=by_label[label],
            distribution=distribution,
            usage=usage,
            cached=cached,
            model=completion.model or self.backend.model,
        )

    def _request(
        self, product: Product, labels: list[str], hierarchical: bool, step: Category | None
    ) -> CompletionRequest:
        template = self.step_template if hierarchical else self.template
        messages = template.render(
            {
                "product": product,
                "labels": labels,
                "parent": step.path_text if step is not None else "",
                "description_chars": self.description_chars,
                "attribute_limit": self.attribute_limit,
            }
        )
        return CompletionRequest(
            messages=messages,
            constraint=ChoiceConstraint(choices=labels),
            sampling=Sampling(
                temperature=0.0, max_tokens=_max_label_tokens(labels), top_logprobs=20
            ),
            prompt_version=template.version,
        )

    async def _ask(self, request: CompletionRequest, labels: list[str]) -> Completion:
        def valid(c: Completion) -> bool:
            return match_label(c.text, labels) is not None

        return await self.engine.call(request, valid)


def similarity_distribution(nearest: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Cosine similarities as a distribution: softmax at ``EMBEDDING_TEMPERATURE``."""
    logits = {cid: sim / EMBEDDING_TEMPERATURE for cid, sim in nearest}
    top = max(logits.values())
    exps = {cid: math.exp(v - top) for cid, v in logits.items()}
    total = sum(exps.values())
    return {cid: v / total for cid, v in exps.items()}


def product_of_experts(*distributions: Mapping[str, float]) -> dict[str, float]:
    """The normalised product of distributions over the same candidates."""
    keys = set(distributions[0]).intersection(*distributions[1:])
    scores = {k: math.prod(d[k] for d in distributions) for k in keys}
    total = sum(scores.values())
    if total <= 0:
        return dict(distributions[0])
    return {k: v / total for k, v in scores.items()}


def contextual_calibrate(
    distribution: Mapping[str, float], prior: Mapping[str, float]
) -> dict[str, float]:
    """Divide out the label prior measured on a content-free input, then renormalise
    (Zhao et al. 2021, "Calibrate Before Use")."""
    scores = {k: p / max(prior.get(k, 0.0), 1e-9) for k, p in distribution.items()}
    total = sum(scores.values()) or 1.0
    return {k: v / total for k, v in scores.items()}


def product_text(product: Product) -> str:
    """The text embedded for a product: title, brand and a few attributes."""
    parts = [product.title]
    if product.brand:
        parts.append(product.brand)
    parts += [f"{k}: {v}" for k, v in list(product.attributes.items())[:6]]
    return ". ".join(parts)


def _dedupe(
    beams: list[tuple[Category | None, float, bool]],
) -> list[tuple[Category | None, float, bool]]:
    seen: set[str | None] = set()
    out = []
    for node, prob, stopped in beams:
        key = node.id if node else None
        if key not in seen:
            seen.add(key)
            out.append((node, prob, stopped))
    return out


def _usage(completion: Completion) -> Usage:
    return Usage(
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        calls=0 if completion.cached else 1,
    )


def _max_label_tokens(labels: Sequence[str]) -> int:
    # Room for the longest label (about 4 characters per token) plus quotes or a JSON wrapper.
    return min(512, max(len(label) for label in labels) // 2 + 24)


def _reask_messages(answer: str, labels: Sequence[str]) -> list[Message]:
    allowed = "\n".join(f"- {label}" for label in labels)
    return [
        Message(role="assistant", content=answer[:500]),
        Message(
            role="user",
            content=(
                "That is not one of the categories. Answer with exactly one category from this "
                f"list, copied exactly, and nothing else:\n{allowed}"
            ),
        ),
    ]


def _item_id(item: object, index: int) -> str:
    if isinstance(item, Product) and item.id:
        return item.id
    if isinstance(item, Mapping) and item.get("id") not in (None, ""):
        return str(item["id"])
    return str(index)
