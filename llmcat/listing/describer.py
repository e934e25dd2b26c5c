"""``Describer``: listing copy (title, bullets, body) that states only facts from the input.

Flow for one product: render the style template, ask for JSON constrained by a schema built from
the length limits, validate, run the grounding check (``grounding.py``) and the degenerate-copy
check (``degenerate.py``). Invalid JSON, broken limits or findings trigger one regeneration with
the problems listed, unless the model cannot fix them (copy in a language it does not write).
After that, over-long fields are cut at a word boundary (so limits always hold); copy that still
has findings is replaced by copy composed from the product's fields (``composed.py``;
``source="composed"``), or returned flagged with ``fallback=None``.
The pure pieces (schema, parsing, limits) are in ``llmcat.listing.schema``; running items is the
``ItemRunner``'s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.attributes.answers import title_values
from llmcat.attributes.schema import Schema
from llmcat.backends import Backend
from llmcat.batch.runner import Done, ItemRunner, Worker, error_record
from llmcat.config.options import LANGUAGES, CopyLimits, CopyOptions, with_overrides
from llmcat.config.overrides import CopyOverrides, DescriberOverrides
from llmcat.config.settings import Settings
from llmcat.errors import InputError, OutputError
from llmcat.io.columns import Columns
from llmcat.io.inputs import Item, ProductLike, coerce_product, item_id
from llmcat.io.specifications import for_shoppers
from llmcat.io.tables import COPY_COLUMNS, FrameT, frame_records, with_results
from llmcat.listing.boilerplate import product_sentences
from llmcat.listing.composed import compose_copy
from llmcat.listing.copyfit import model_copy_decision
from llmcat.listing.degenerate import (
    attributes_to_mention,
    body_floor,
    content_words,
    degenerate_findings,
    tokens,
)
from llmcat.listing.grounding import check_copy, input_text, used_attributes
from llmcat.listing.schema import (
    ListingCopy,
    copy_fields,
    copy_schema,
    enforce_limits,
    limit_problems,
    parse_copy,
    style_template,
)
from llmcat.llm.completions import Completion, CompletionRequest, JsonConstraint, Sampling, usage_of
from llmcat.llm.engine import Engine, split_overrides
from llmcat.llm.modelfiles import model_languages
from llmcat.llm.prompts import PromptTemplate
from llmcat.types import Description, Finding, Product, Usage

if TYPE_CHECKING:
    from pydantic import JsonValue
    from typing_extensions import Unpack

__all__ = ["Describer"]
log = logging.getLogger(__name__)

#: the grounding and degenerate-copy checks of one product's copy (a run record's copy too)
CopyCheck = Callable[[ListingCopy | Mapping[str, object]], list[Finding]]


class Describer(Worker):
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
        **overrides: Unpack[DescriberOverrides],
    ) -> None:
        connection, chosen = split_overrides(overrides, CopyOptions)
        self.options = with_overrides(options or CopyOptions(), chosen, what="describe")
        self._engine = Engine(backend=backend, settings=settings, overrides=connection)
        self._runner = ItemRunner(self._engine)
        self.template = template_for(self.options)  # a missing style fails here, not per item

    @property
    def prompt_version(self) -> str:
        """The version of the style template with the describer's own options."""
        return self.template.version

    def job(self, **overrides: Unpack[CopyOverrides]) -> CopyJob:
        """The per-product work with these option overrides (ConfigError for bad ones)."""
        options = with_overrides(self.options, overrides, what="describe")
        return CopyJob(self._engine, options, template_for(options))

    def plan(self) -> str:
        """Whether the model is asked for copy, and why (``llmcat describe --explain``)."""
        return self.job().plan()

    def compose(self, product: ProductLike, **options: Unpack[CopyOverrides]) -> Description:
        """Composed copy for one product, without a model call: the copy baseline, and what
        ``fallback="compose"`` returns (keyword options as for ``describe``)."""
        job = self.job(**options)
        try:
            item = coerce_product(product, 0)
        except InputError as exc:
            return job.failed(item_id(product, 0), exc)
        item = product_for_copy(item, job.options.language)
        check = job.checker(item)  # the input as given, as in run()
        record = Description(
            product_id=item.id,
            language=job.options.language,
            model="composed",
            prompt_version=job.template.version,
        )
        return job.composed(with_title_attributes(item, job.options), record, check, [])

    # -- one product, a stream, a list; blocking twins ----------------------------------------

    async def adescribe(
        self, product: ProductLike, **options: Unpack[CopyOverrides]
    ) -> Description:
        """Copy for one product; failures come back as a Description with ``error`` set.
        Keyword arguments override fields of ``CopyOptions`` for this call."""
        return await self._runner.one(product, self.job(**options))

    def describe(self, product: ProductLike, **options: Unpack[CopyOverrides]) -> Description:
        """Blocking ``adescribe``; takes the same keyword options."""
        return self._runner.blocking(self.adescribe(product, **options))

    def aiter_describe(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
        **options: Unpack[CopyOverrides],
    ) -> AsyncIterator[Description]:
        """One Description per input, in order, with bounded concurrency (``start`` and
        ``total`` as for ``Classifier.aiter_classify``)."""
        job = self.job(**options)
        return self._runner.stream(
            products, job, label="describe", progress=progress, start=start, total=total
        )

    def aiter_done(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
        **options: Unpack[CopyOverrides],
    ) -> AsyncIterator[Done[Description]]:
        """``aiter_describe``, each Description beside the input it answers and its position."""
        job = self.job(**options)
        return self._runner.stream_done(
            products, job, label="describe", progress=progress, start=start, total=total
        )

    async def adescribe_many(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        **options: Unpack[CopyOverrides],
    ) -> list[Description]:
        """Copy for every product; one result (or error record) per input, in order."""
        job = self.job(**options)
        return await self._runner.collect(products, job, label="describe", progress=progress)

    def describe_many(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        **options: Unpack[CopyOverrides],
    ) -> list[Description]:
        """Blocking ``adescribe_many``."""
        return self._runner.blocking(self.adescribe_many(products, progress=progress, **options))

    def describe_frame(
        self,
        frame: FrameT,
        *,
        prefix: str = "",
        progress: bool | None = None,
        columns: Columns | None = None,
        **options: Unpack[CopyOverrides],
    ) -> FrameT:
        """A copy of the pandas DataFrame ``frame`` with the copy of each row in new columns
        (``copy_title``, ``copy_bullets``, ``copy_body``, ``copy_flagged``, ``copy_findings``, ``copy_source``,
        ``error``; each named ``prefix + name``), same index and order. ``columns``: as in
        ``Classifier.classify_frame``."""
        records = frame_records(frame, columns)
        results = self.describe_many(records, progress=progress, **options)
        return with_results(frame, results, COPY_COLUMNS, prefix)


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
        """Ask, check, regenerate once with the problems (unless no regeneration can fix them for
        this model), keep the better answer, enforce limits; copy that still has findings is
        replaced by composed copy when ``fallback="compose"``. The description goes without the
        shop's boilerplate; a model its copy fit does not trust, or a product with nothing
        beyond its title, gets composed copy without a model call."""
        options, limits = self.options, self.options.limits()
        product = product_for_copy(product, options.language)
        # The checks read the input as given: values read from the title add no fact to it.
        check = self.checker(product)
        bare = thin(product, options.category)
        product = with_title_attributes(product, options)
        auto = options.ask_model == "auto"
        if not self.asks_model() or (auto and bare):
            record = Description(
                product_id=product.id,
                language=options.language,
                model="composed",
                prompt_version=self.template.version,
            )
            return self.composed(product, record, check, [])
        schema = copy_schema(limits, options.language)
        findings_text: list[str] = []
        usage, cached, model = Usage(), True, self.engine.backend.model
        copy: ListingCopy | None = None
        best_score = 0
        last_error: OutputError | None = None
        for _attempt in range(2):
            completion = await self.engine.call(
                self.request(product, schema, findings_text), _parses
            )
            model = completion.model or model
            usage = usage + usage_of(completion)
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
            if self.unfixable(found, model):
                # The same model would write the same kind of copy again: not worth a call.
                log.info(
                    "product %s: no regeneration, %s does not write %s",
                    product.id or "?",
                    model,
                    options.language,
                )
                break
            if _attempt == 0:
                log.info(
                    "regenerating copy of product %s: %s",
                    product.id or "?",
                    ", ".join(
                        sorted({f.kind for f in found} | ({"limits"} if problems else set()))
                    ),
                )
            findings_text = problems + [_explain(f, options.language) for f in found]
        record = Description(
            product_id=product.id,
            language=options.language,
            model=model,
            prompt_version=self.template.version,
            usage=usage,
            cached=cached,
        )
        if copy is None:
            error = last_error or OutputError("the model gave no JSON object")
            if options.fallback != "compose":
                raise error
            log.info("composed copy for product %s: %s", product.id or "?", error)
            unusable = Finding(kind="unusable_answer", text=str(error)[:200])
            return self.composed(product, record, check, [unusable])
        copy = enforce_limits(copy, limits)
        findings = check(copy)
        if findings and options.fallback == "compose":
            log.info(
                "composed copy for product %s: the model's copy kept %s",
                product.id or "?",
                ", ".join(sorted({f.kind for f in findings})),
            )
            replaced = self.composed(product, record, check, findings)
            return replaced.model_copy(update={"rejected_copy": copy.as_record()})
        return self.filled(record, copy, findings, product)

    def asks_model(self) -> bool:
        """Whether the model is asked for copy (``CopyOptions.ask_model``; ``plan`` says why)."""
        return model_copy_decision(self.options.ask_model, self.engine.backend.model)[0]

    def plan(self) -> str:
        """Whether the model is asked for copy, and why (``llmcat describe --explain``)."""
        return model_copy_decision(self.options.ask_model, self.engine.backend.model)[1]

    def checker(self, product: Product) -> CopyCheck:
        """The grounding and degenerate-copy checks of one product's copy."""
        return copy_checker(product, self.options)

    def unfixable(self, findings: list[Finding], model: str) -> bool:
        """True when a regeneration cannot fix ``findings`` for this model: copy in the wrong
        language from a model that does not write the language asked for."""
        languages = self.options.model_languages or model_languages(model)
        return (
            languages is not None
            and self.options.language not in languages
            and any(f.kind == "wrong_language" for f in findings)
        )

    def composed(
        self,
        product: Product,
        record: Description,
        check: CopyCheck,
        rejected_findings: list[Finding],
    ) -> Description:
        """``record`` filled with copy composed from the product's fields."""
        copy = compose_copy(
            product,
            self.options.limits(),
            self.options.language,
            self.options.category,
            self.options.min_body_words,
        )
        findings = check(copy)
        if copy.body and any(f.kind == "thin" for f in findings):
            # Nothing beyond the title: values read from it go in the bullets, never in a body
            # that would say the title again.
            copy = copy.model_copy(update={"body": ""})
            findings = check(copy)
        filled = self.filled(record, copy, findings, product)
        return filled.model_copy(
            update={"source": "composed", "rejected_findings": rejected_findings}
        )

    @staticmethod
    def filled(
        record: Description, copy: ListingCopy, findings: list[Finding], product: Product
    ) -> Description:
        """``record`` with ``copy`` and its findings."""
        return record.model_copy(
            update={
                "title": copy.title,
                "bullets": list(copy.bullets),
                "body": copy.body,
                "used_attributes": used_attributes(copy_fields(copy), product.attributes),
                "findings": findings,
                "flagged": bool(findings),
            }
        )

    def request(
        self, product: Product, schema: dict[str, JsonValue], findings: list[str]
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
                "demands": copy_demands(product, options),
            }
        )
        return CompletionRequest(
            messages=messages,
            constraint=JsonConstraint(name="listing_copy", json_schema=schema),
            sampling=Sampling(temperature=0.0, max_tokens=_max_copy_tokens(options.limits())),
            prompt_version=self.template.version,
            images=list(product.image_urls),
        )


def product_for_copy(product: Product, language: str) -> Product:
    """``product`` with only the description's sentences about the product: no prices, links,
    shop slogans, specification dumps or repeated sentences (``llmcat.listing.boilerplate``)."""
    sentences = product_sentences(product.description, language)
    return product.model_copy(update={"description": "\n".join(sentences)})


def with_title_attributes(product: Product, options: CopyOptions) -> Product:
    """With ``title_attributes``, ``product`` with the colour and material its title states
    among its attributes (``llmcat.attributes.answers.title_values``), so the copy names them.
    They add no fact to the title: a product is thin or not before they are read."""
    read = title_values(product, Schema.builtin()) if options.title_attributes else {}
    return product.model_copy(update={"attributes": {**product.attributes, **read}})


def thin(product: Product, category: str | None = None) -> bool:
    """True when the product data says nothing beyond the title and the brand: there is no
    copy to write, and a model asked would invent. A product with images is never thin: a model
    that sees them has more to go on."""
    if product.image_urls:
        return False
    said = set(tokens(f"{product.title} {product.brand}"))
    rest = f"{product.description} {category or ''} " + " ".join(
        f"{k} {v}" for k, v in product.attributes.items()
    )
    return not (set(content_words(tokens(rest))) - said)


@dataclass(frozen=True)
class CopyDemands:
    """What one product's copy is held to, beyond the limits: the input text it may draw facts
    from, the values it has to name, and the shortest body worth publishing."""

    source: str
    mention: list[str]
    body_floor: int


def copy_demands(product: Product, options: CopyOptions) -> CopyDemands:
    """The demands on ``product``'s copy under ``options`` (shown in the prompt, then checked)."""
    source = input_text(
        {
            "title": product.title,
            "brand": product.brand,
            "description": product.description,
            "category": options.category or "",
        },
        product.attributes,
    )
    named = {m.lower() for m in options.must_mention}
    # The brand is the title's to name; a specification's spelling of it ("KandP" for "K&P")
    # is not a value the copy must repeat.
    # Nor is a value the copy leaves out (warranty terms, style codes: ``for_shoppers``).
    attributes = {
        k: v
        for k, v in product.attributes.items()
        if k.strip().lower() != "brand" and for_shoppers(k)
    }
    mention = [*options.must_mention] + [
        v
        for v in attributes_to_mention(attributes, options.mention_attributes)
        if v.lower() not in named
    ]
    return CopyDemands(
        source,
        mention,
        body_floor(options.min_body_words, options.body_words, source, product.title),
    )


def copy_checker(product: Product, options: CopyOptions) -> CopyCheck:
    """The grounding and degenerate-copy checks of ``product``'s copy under ``options``: copy
    (title, bullets, body) -> findings."""
    demands = copy_demands(product, options)
    named = {m.lower() for m in options.must_mention}

    def check(candidate: ListingCopy | Mapping[str, object]) -> list[Finding]:
        fields = copy_fields(candidate)
        return check_copy(
            fields,
            demands.source,
            must_mention=options.must_mention,
            known_brands=options.known_brands,
        ) + degenerate_findings(
            fields,
            title=product.title,
            brand=product.brand,
            source=demands.source,
            language=options.language,
            attributes=[v for v in demands.mention if v.lower() not in named],
            given=product.attributes,
            min_body_words=options.min_body_words,
            body_words=options.body_words,
        )

    return check


def _parses(completion: Completion) -> bool:
    try:
        parse_copy(completion.text)
    except OutputError:
        return False
    return True


def _explain(finding: Finding, language: str) -> str:
    """One finding as an instruction for the regeneration."""
    where = f" in the {finding.field}" if finding.field else ""
    if finding.kind == "missing_attribute":
        return f"mention {finding.text!r}"
    if finding.kind == "repetition":
        return f"do not repeat {finding.text!r}{where}"
    if finding.kind == "restated_title":
        return f"the {finding.field} only repeats the title: use other facts of the product data"
    if finding.kind == "short_body":
        return f"the body is too short ({finding.text}): use more of the product data"
    if finding.kind == "boilerplate":
        return f"{finding.text!r}{where} is the shop's, not the product's: remove it"
    if finding.kind == "thin":
        return "the product data has nothing beyond the title: do not invent"
    if finding.kind == "wrong_language":
        return f"write in {LANGUAGES[language]} ({finding.text})"
    return f"{finding.text!r}{where} is not in the product data: remove it"


def _max_copy_tokens(limits: CopyLimits) -> int:
    words = limits.title_words + limits.bullets * limits.bullet_words + limits.body_words
    return int(words * 2.2) + 64
