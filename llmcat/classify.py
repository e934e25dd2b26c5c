"""``Classifier``: put products into categories of a taxonomy with a zero-shot LLM.

The ``flat`` strategy shows the candidate labels (leaf paths) and asks for one, constrained by the
backend. Every answer passes ``labels.match_label`` against the allowed list: an unconstrained
server gets one re-ask with the list, and an answer that still names no label becomes an error
record. A label outside the taxonomy is never returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .backends import Backend, create_backend
from .backends.base import ChoiceConstraint, Completion, CompletionRequest, Message, Sampling
from .batch import Progress, map_ordered, run_sync
from .cache import ResponseCache
from .calls import ModelCaller
from .confidence import choice_distribution
from .errors import ConfigError, InputError, LlmcatError, OutputError
from .inputs import coerce_product
from .labels import match_label
from .prompts import PromptTemplate
from .settings import Settings
from .taxonomy import Category, Taxonomy
from .types import Alternative, Classification, ErrorRecord, Product, Usage

ProductLike = Product | str | Mapping[str, Any]

#: Labels a flat prompt may list before ``auto`` picks a strategy that narrows them first.
FLAT_LABEL_LIMIT = 200


def error_record(exc: BaseException) -> ErrorRecord:
    """An ErrorRecord for any exception (llmcat's own carry retryable/status)."""
    return ErrorRecord(
        type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        retryable=bool(getattr(exc, "retryable", False)),
        status_code=getattr(exc, "status_code", None),
    )


@dataclass
class Choice:
    """The result of one constrained choice among candidate categories."""

    category: Category
    distribution: dict[str, float] | None
    usage: Usage
    cached: bool
    model: str


class Engine:
    """What Classifier and Describer share: the backend, the caller and the settings."""

    def __init__(
        self,
        *,
        backend: Backend | str | None,
        settings: Settings | None,
        overrides: dict[str, Any],
    ) -> None:
        base = settings or Settings()
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            merged = Settings.model_validate({**base.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(
                f"invalid settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
            ) from None
        self.settings = merged.resolved()
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            if isinstance(backend, str):
                self.settings = self.settings.model_copy(update={"backend": backend})
            self.backend = create_backend(self.settings)
        assert self.settings.cache_dir is not None
        self.cache = ResponseCache(self.settings.cache_dir) if self.settings.cache else None
        self.caller = ModelCaller(
            self.backend, cache=self.cache, timeout=self.settings.timeout, retry=self.settings.retry
        )

    @property
    def concurrency(self) -> int:
        return self.settings.concurrency or self.backend.max_concurrency

    async def call(
        self, request: CompletionRequest, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        return await self.caller(request, is_valid=is_valid)

    def progress(self, total: int | None, label: str, enabled: bool | None) -> Progress:
        return Progress(
            total, label=label, enabled=enabled if enabled is not None else self.settings.progress
        )


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
        template_dir: str | Path | None = None,
        template: str = "classify.j2",
        review_threshold: float = 0.5,
        description_chars: int = 300,
        attribute_limit: int = 10,
    ) -> None:
        self.taxonomy = (
            taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.from_labels(list(taxonomy))
        )
        if not 0.0 <= review_threshold <= 1.0:
            raise ConfigError("review_threshold must be within [0, 1]")
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
        self.review_threshold = review_threshold
        self.description_chars = description_chars
        self.attribute_limit = attribute_limit
        self.strategy = "flat"
        self._leaves = self.taxonomy.leaves()
        if len(self._leaves) > FLAT_LABEL_LIMIT * 10:
            raise ConfigError(
                f"{len(self._leaves)} labels are too many for one prompt; the flat strategy "
                f"takes up to {FLAT_LABEL_LIMIT * 10}"
            )

    @property
    def backend(self) -> Backend:
        return self.engine.backend

    # -- one product ----------------------------------------------------------------------------

    async def aclassify(self, product: ProductLike) -> Classification:
        """Classify one product; failures come back as a result with ``error`` set."""
        return await self._classify_item(product, 0)

    def classify(self, product: ProductLike) -> Classification:
        """Blocking ``aclassify``."""
        return run_sync(self.aclassify(product))

    # -- batches --------------------------------------------------------------------------------

    async def aiter_classify(
        self, products: Iterable[ProductLike | InputError], *, progress: bool | None = None
    ) -> AsyncIterator[Classification]:
        """Yield one Classification per input, in input order, with bounded concurrency."""
        total = len(products) if isinstance(products, Sequence) else None
        bar = self.engine.progress(total, "classify", progress)
        try:
            async for result in map_ordered(
                self._classify_item, products, concurrency=self.engine.concurrency
            ):
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
        return run_sync(self.aclassify_many(products, progress=progress))

    # -- internals ------------------------------------------------------------------------------

    async def _classify_item(self, item: ProductLike | InputError, index: int) -> Classification:
        product_id = _item_id(item, index)
        try:
            if isinstance(item, InputError):
                raise item
            product = coerce_product(item, index)
            product_id = product.id
            return await self._classify_product(product)
        except ConfigError:
            raise  # the caller's setup is wrong for every item: stop and say so
        except LlmcatError as exc:
            return self._failed(product_id, exc)
        except Exception as exc:  # a batch never dies because of one item, even on a bug
            return self._failed(product_id, exc)

    def _failed(self, product_id: str, exc: BaseException) -> Classification:
        return Classification(
            product_id=product_id,
            strategy=self.strategy,
            model=self.backend.model,
            prompt_version=self.template.version,
            error=error_record(exc),
        )

    async def _classify_product(self, product: Product) -> Classification:
        choice = await self.choose(product, self._leaves)
        return self._result(product, choice)

    def _result(self, product: Product, choice: Choice) -> Classification:
        alternatives = []
        confidence = None
        if choice.distribution is not None:
            by_label = {_label(c): c for c in self._leaves}
            ranked = sorted(choice.distribution.items(), key=lambda kv: -kv[1])
            confidence = choice.distribution.get(_label(choice.category), 0.0)
            for label, probability in ranked[:5]:
                cat = by_label.get(label)
                if cat is not None:
                    alternatives.append(
                        Alternative(
                            category_id=cat.id, path=list(cat.path), probability=probability
                        )
                    )
        return Classification(
            product_id=product.id,
            category_id=choice.category.id,
            path=list(choice.category.path),
            confidence=confidence,
            alternatives=alternatives,
            needs_review=confidence is not None and confidence < self.review_threshold,
            strategy=self.strategy,
            model=choice.model,
            prompt_version=self.template.version,
            usage=choice.usage,
            cached=choice.cached,
        )

    async def choose(self, product: Product, candidates: Sequence[Category]) -> Choice:
        """One constrained choice among ``candidates``, re-asking once if the answer is unusable."""
        by_label = {_label(c): c for c in candidates}
        labels = list(by_label)
        messages = self.template.render(
            {
                "product": product,
                "labels": labels,
                "description_chars": self.description_chars,
                "attribute_limit": self.attribute_limit,
            }
        )
        request = CompletionRequest(
            messages=messages,
            constraint=ChoiceConstraint(choices=labels),
            sampling=Sampling(
                temperature=0.0, max_tokens=_max_label_tokens(labels), top_logprobs=20
            ),
            prompt_version=self.template.version,
        )

        def valid(c: Completion) -> bool:
            return match_label(c.text, labels) is not None

        completion = await self.engine.call(request, valid)
        usage = _usage(completion)
        label = match_label(completion.text, labels)
        cached = completion.cached
        if label is None:
            retry = request.model_copy(
                update={"messages": [*messages, *_reask_messages(completion.text, labels)]}
            )
            completion = await self.engine.call(retry, valid)
            usage = usage + _usage(completion)
            cached = cached and completion.cached
            label = match_label(completion.text, labels)
        if label is None:
            raise OutputError(
                f"the model answered {completion.text[:80]!r}, which is not one of the "
                f"{len(labels)} allowed categories",
                raw=completion.text,
            )
        distribution = None
        if completion.text == label:
            distribution = choice_distribution(completion, labels)
        return Choice(
            category=by_label[label],
            distribution=distribution,
            usage=usage,
            cached=cached,
            model=completion.model or self.backend.model,
        )

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.backend.aclose()
        if self.engine.cache is not None:
            self.engine.cache.close()


def _label(category: Category) -> str:
    return category.path_text


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


__all__ = ["Classifier", "Engine", "error_record"]
