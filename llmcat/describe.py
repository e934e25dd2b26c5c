"""``Describer``: listing copy (title, bullets, body) that states only facts from the input.

Flow for one product: render the style template, ask for JSON constrained by a schema built from
the length limits, validate, run the grounding check. Invalid JSON, broken limits or grounding
findings trigger one re-ask with the problems listed. After that, over-long fields are cut at a
word boundary (so limits always hold) and remaining grounding findings set ``flagged``.
The pure pieces (schema, parsing, limits) are in ``llmcat.listing``; running items is the
``ItemRunner``'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .backends import Backend
from .completions import Completion, CompletionRequest, JsonConstraint, Sampling
from .engine import Engine, split_overrides
from .errors import OutputError
from .grounding import check_copy, input_text, used_attributes
from .listing import (
    copy_fields,
    copy_schema,
    enforce_limits,
    limit_problems,
    parse_copy,
    style_template,
)
from .options import LANGUAGES, CopyLimits, CopyOptions, with_overrides
from .prompts import PromptTemplate
from .runner import Item, ItemRunner, ProductLike, error_record
from .settings import Settings
from .tables import COPY_COLUMNS, frame_records, with_results
from .types import Description, Finding, Product, Usage

__all__ = ["Describer"]


class Describer:
    """Write listing copy for products.

    ``options`` is a ``CopyOptions``; keyword arguments name its fields (``style="seo"``,
    ``language="zh"``, ``max_words=80``) or those of ``Settings``, and every call may override
    the copy options again (``describe(product, language="zh")``). Backend selection works as for
    ``Classifier``.
    """

    def __init__(
        self,
        options: CopyOptions | None = None,
        *,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        connection, chosen = split_overrides(overrides, CopyOptions)
        self.options = with_overrides(options or CopyOptions(), chosen, what="describe")
        self.engine = Engine(backend=backend, settings=settings, overrides=connection)
        self.runner = ItemRunner(self.engine)
        self.template = template_for(self.options)  # a missing style fails here, not per item

    @property
    def backend(self) -> Backend:
        """The backend that answers this describer's model calls."""
        return self.engine.backend

    @property
    def prompt_version(self) -> str:
        """The version of the style template with the describer's own options."""
        return self.template.version

    def job(self, **overrides: Any) -> CopyJob:
        """The per-product work with these option overrides (ConfigError for bad ones)."""
        options = with_overrides(self.options, overrides, what="describe")
        return CopyJob(self.engine, options, template_for(options))

    # -- one product, a stream, a list; blocking twins ----------------------------------------

    async def adescribe(self, product: ProductLike, **options: Any) -> Description:
        """Copy for one product; failures come back as a Description with ``error`` set.
        Keyword arguments override fields of ``CopyOptions`` for this call."""
        return await self.runner.one(product, self.job(**options))

    def describe(self, product: ProductLike, **options: Any) -> Description:
        """Blocking ``adescribe``; takes the same keyword options."""
        return self.runner.blocking(self.adescribe(product, **options))

    def aiter_describe(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        **options: Any,
    ) -> AsyncIterator[Description]:
        """One Description per input, in order, with bounded concurrency (``start`` as for
        ``Classifier.aiter_classify``)."""
        job = self.job(**options)
        return self.runner.stream(products, job, label="describe", progress=progress, start=start)

    async def adescribe_many(
        self, products: Iterable[Item], *, progress: bool | None = None, **options: Any
    ) -> list[Description]:
        """Copy for every product; one result (or error record) per input, in order."""
        job = self.job(**options)
        return await self.runner.collect(products, job, label="describe", progress=progress)

    def describe_many(
        self, products: Iterable[Item], *, progress: bool | None = None, **options: Any
    ) -> list[Description]:
        """Blocking ``adescribe_many``."""
        return self.runner.blocking(self.adescribe_many(products, progress=progress, **options))

    def describe_frame(
        self, frame: Any, *, prefix: str = "", progress: bool | None = None, **options: Any
    ) -> Any:
        """A copy of the pandas DataFrame ``frame`` with the copy of each row in new columns
        (``copy_title``, ``copy_bullets``, ``copy_body``, ``copy_flagged``, ``copy_findings``,
        ``error``; each named ``prefix + name``), same index and order."""
        results = self.describe_many(frame_records(frame), progress=progress, **options)
        return with_results(frame, results, COPY_COLUMNS, prefix)

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.runner.aclose()


@lru_cache(maxsize=32)
def _template(name: str, template_dir: Path | None) -> PromptTemplate:
    return PromptTemplate(name, template_dir)


def template_for(options: CopyOptions) -> PromptTemplate:
    """The template that ``options`` name: ``template``, else the style's."""
    return _template(options.template or style_template(options.style), options.template_dir)


@dataclass
class CopyJob:
    """Copy for one product with fixed options: the runner's ``Job``."""

    engine: Engine
    options: CopyOptions
    template: PromptTemplate

    def failed(self, product_id: str, error: BaseException) -> Description:
        """The error record of one item."""
        return Description(
            product_id=product_id,
            language=self.options.language,
            model=self.engine.backend.model,
            prompt_version=self.template.version,
            error=error_record(error),
        )

    async def run(self, product: Product) -> Description:
        """Ask, check, re-ask once with the problems, keep the better answer, enforce limits."""
        options, limits = self.options, self.options.limits()
        schema = copy_schema(limits, options.language)
        source = input_text(
            {"title": product.title, "brand": product.brand, "description": product.description},
            product.attributes,
        )

        def check(candidate: dict[str, Any]) -> list[Finding]:
            return check_copy(
                copy_fields(candidate),
                source,
                must_mention=options.must_mention,
                known_brands=options.known_brands,
            )

        findings_text: list[str] = []
        usage, cached, model = Usage(), True, self.engine.backend.model
        copy: dict[str, Any] | None = None
        best_score = 0
        last_error: OutputError | None = None
        for _attempt in range(2):
            completion = await self.engine.call(
                self.request(product, schema, findings_text), _parses
            )
            model = completion.model or model
            usage = usage + Usage(
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                calls=0 if completion.cached else 1,
            )
            cached = cached and completion.cached
            try:
                candidate = parse_copy(completion.text)
            except OutputError as exc:
                last_error = exc
                findings_text = [f"{exc}: answer with one JSON object only"]
                continue
            problems = limit_problems(candidate, limits)
            found = check(candidate)
            # Keep the better of the answers so far: a re-ask that breaks the JSON or adds
            # problems must not throw away a usable first answer.
            if copy is None or len(problems) + len(found) <= best_score:
                copy, best_score = candidate, len(problems) + len(found)
            if not problems and not found:
                break
            findings_text = problems + [_explain(f) for f in found]
        if copy is None:
            raise last_error or OutputError("the model gave no JSON object")
        copy = enforce_limits(copy, limits)
        findings = check(copy)
        return Description(
            product_id=product.id,
            title=copy["title"],
            bullets=copy["bullets"],
            body=copy["body"],
            language=options.language,
            used_attributes=used_attributes(copy_fields(copy), product.attributes),
            findings=findings,
            flagged=bool(findings),
            model=model,
            prompt_version=self.template.version,
            usage=usage,
            cached=cached,
        )

    def request(
        self, product: Product, schema: dict[str, Any], findings: list[str]
    ) -> CompletionRequest:
        """The request for one attempt; ``findings`` are the previous attempt's problems."""
        options = self.options
        messages = self.template.render(
            {
                "product": product,
                "language_name": LANGUAGES[options.language],
                "tone": options.tone,
                "limits": options.limits(),
                "keywords": options.keywords,
                "category": options.category,
                "findings": findings,
                "description_chars": options.description_chars,
                "attribute_limit": 60,
            }
        )
        return CompletionRequest(
            messages=messages,
            constraint=JsonConstraint(name="listing_copy", json_schema=schema),
            sampling=Sampling(temperature=0.0, max_tokens=_max_copy_tokens(options.limits())),
            prompt_version=self.template.version,
        )


def _parses(completion: Completion) -> bool:
    try:
        parse_copy(completion.text)
    except OutputError:
        return False
    return True


def _explain(finding: Finding) -> str:
    if finding.kind == "missing_attribute":
        return f"mention {finding.text!r}"
    where = f" in the {finding.field}" if finding.field else ""
    return f"{finding.text!r}{where} is not in the product data: remove it"


def _max_copy_tokens(limits: CopyLimits) -> int:
    words = limits.title_words + limits.bullets * limits.bullet_words + limits.body_words
    return int(words * 2.2) + 64
