"""``Extractor``: attribute values read from each product's own text.

A product's attributes are those of its category in the schema (the caller's, or learned from
the examples); its category is the input's ``category`` field (``ExtractOptions.category_field``,
read as an attribute column, never as product text). Per attribute:

- with examples, the ``SpanTagger`` learned from them ranks the runs of the title and the
  description; the best run is the value when its score passes the threshold fitted on
  held-out examples, and its calibrated chance of being right is the confidence;
- an attribute with allowed values takes the longest allowed value the text states (whole
  words, any case; the product's own attributes of that name or sharing a word with it first,
  then the title and the description), written as allowed; its confidence is not fitted, so
  it always asks for review.

With a ``categorizer`` (``llmcat extract --taxonomy shopify``), the category is the one it
chooses, and the attributes are that category's (Shopify's, with their allowed values).

A value is always a run of the text or an allowed value the text states: anything else is
dropped and counted (``Extraction.dropped``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.attributes.answers import (
    allowed_value,
    grounded,
    located,
    related,
    tagged_value,
)
from llmcat.attributes.examples import AttributeExample, CategoryGuess, read_examples
from llmcat.attributes.schema import Schema
from llmcat.attributes.shopify import schema_from
from llmcat.attributes.tagger import TAGGER_VERSION, SpanTagger, decoded
from llmcat.backends import Backend
from llmcat.batch.progress import Progress
from llmcat.batch.runner import Done, ItemRunner, Worker, error_record
from llmcat.config.options import ExtractOptions, with_overrides
from llmcat.config.overrides import ExtractorOverrides
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError, InputError
from llmcat.io.columns import Columns
from llmcat.io.inputs import Item, ProductLike, coerce_product
from llmcat.io.tables import EXTRACT_COLUMNS, FrameT, frame_records, with_columns, with_results
from llmcat.llm.engine import Engine, split_overrides
from llmcat.llm.once import AsyncOnce
from llmcat.types import (
    AttributeValue,
    Classification,
    Extraction,
    Product,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


log = logging.getLogger(__name__)

#: products in flight without a categorizer (the tagger runs in the event loop; more only
#: holds more results for the reorder buffer)
TAGGER_CONCURRENCY = 8


class Categorizer(Protocol):
    """What chooses a product's category when the input has none: a ``Classifier``."""

    async def aclassify(self, product: ProductLike) -> Classification: ...

    def aiter_done(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[Done[Classification]]: ...

    @property
    def concurrency(self) -> int:
        """Products it classifies at once to its best speed (a batch of embeddings)."""
        ...


class Extractor(Worker):
    """Extract attribute values from products (see the module docstring).

    ``schema``: a ``Schema``, attribute names (``"color,material"`` or a list) or a schema file;
    default: learned from ``examples``. ``examples``: labelled products (``AttributeExample``s
    or a JSONL file in the benchmark format or llmcat's). Keyword arguments name fields of
    ``ExtractOptions`` or ``Settings``. ``categorizer``: chooses each product's category (a
    ``Classifier`` over Shopify's taxonomy for Shopify's attributes); its answer's id names the
    category in the schema.
    """

    def __init__(
        self,
        schema: Schema | str | Sequence[str] | Path | None = None,
        *,
        examples: Sequence[AttributeExample] | str | Path | None = None,
        options: ExtractOptions | None = None,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        categorizer: Categorizer | None = None,
        **overrides: Unpack[ExtractorOverrides],
    ) -> None:
        self.categorizer = categorizer
        connection, chosen = split_overrides(overrides, ExtractOptions)
        self.options = with_overrides(options or ExtractOptions(), chosen, what="extract")
        self._engine = Engine(backend=backend, settings=settings, overrides=connection)
        # No model call: the work is the tagger's and the categorizer's, which batches embeddings
        # across the products in flight.
        self._runner = ItemRunner(
            self._engine,
            concurrency=categorizer.concurrency if categorizer is not None else TAGGER_CONCURRENCY,
        )
        self.examples = _examples(examples)
        if schema is None:
            if not self.examples:
                raise ConfigError(
                    "extract needs attributes (--attributes NAMES or a schema file) or "
                    "labelled examples (--examples FILE)"
                )
            self.schema = Schema.learned(self.examples)
        elif isinstance(schema, Schema):
            self.schema = schema
        elif isinstance(schema, (str, Path)):
            self.schema = schema_from(schema)
        else:
            self.schema = Schema.from_names(schema)
        free = [s.name for s in self.schema.every() if not s.values]
        if free and not self.examples:
            raise ConfigError(
                f"free-text attributes ({', '.join(free[:5])}) are read by a tagger learned from "
                "labelled examples: give --examples FILE, or allowed values in a schema file"
            )
        labelled = {name for e in self.examples or () for name, v in e.values.items() if v}
        unlearned = [name for name in free if name not in labelled]
        if unlearned:
            raise ConfigError(
                f"no example states a value of {', '.join(unlearned[:5])}: the tagger cannot "
                "learn them (give labelled examples of them, or allowed values in a schema file)"
            )
        self._tagger = AsyncOnce[SpanTagger | None]()
        named = {e.category for e in self.examples or ()} - {""}
        self._guess = CategoryGuess(self.examples or ()) if len(named) > 1 else None
        self._guessed = False

    def guessed_category(self, title: str) -> str | None:
        """The examples' category a product without one takes (their words; None without
        examples or categories), said once per extractor in the log."""
        if self._guess is None:
            return None
        if not self._guessed:
            self._guessed = True
            log.warning(
                "a product has no %r field: it takes the category of the examples whose words "
                "its title shares most (give each product its category, or --category-field)",
                self.options.category_field,
            )
        return self._guess(title)

    async def tagger(self) -> SpanTagger | None:
        """The tagger learned from the examples (once; None without examples)."""
        return await self._tagger.get(self._train)

    async def _train(self) -> SpanTagger | None:
        """Learned from the examples, or read from the cache folder where the same examples
        were learned from before (learning OA-Mine's 1,452 takes about a minute)."""
        if not self.examples:
            return None
        settings = self.settings
        saved = (
            settings.cache_dir / "attributes" / f"tagger-{self._examples_digest()}.json"
            if settings.cache and settings.cache_dir is not None
            else None
        )
        if saved is not None:
            kept = await asyncio.to_thread(SpanTagger.load, saved)
            if kept is not None:
                return kept
        examples = self.examples
        bar = Progress(
            SpanTagger.fits(examples),
            label=f"learning from {len(examples)} examples (kept for the next run)",
            enabled=settings.progress,
        )
        try:
            tagger = await asyncio.to_thread(
                lambda: SpanTagger.trained(examples, fitted=bar.update)
            )
        finally:
            bar.close()
        if saved is not None:
            try:
                await asyncio.to_thread(tagger.save, saved)
            except OSError as exc:  # a read-only cache costs time, not the run
                log.warning("cannot keep the learned tagger in %s: %s", saved, exc)
        return tagger

    def _examples_digest(self) -> str:
        # The tagger's own code is part of the key: a release that changes a feature learns
        # again rather than read weights of other features.
        digest = hashlib.sha256(str(TAGGER_VERSION).encode() + _TAGGER_CODE)
        for example in self.examples or ():
            digest.update(repr(example).encode())
        return digest.hexdigest()[:16]

    @property
    def prompt_version(self) -> str:
        """What the answers depend on besides the input: the schema and the examples."""
        digest = hashlib.sha256(self.schema.model_dump_json().encode())
        digest.update(self._examples_digest().encode())
        return f"tagger-{digest.hexdigest()[:12]}"

    async def prepare(self) -> None:
        """Learn from the examples (once) before a batch: a bad examples file fails here."""
        await self.tagger()

    def plan(self) -> str:
        """How each attribute is read, and why (``llmcat extract --explain``)."""
        names = self.schema.names
        lines = [
            f"attributes: {len(names)} ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        ]
        if self.examples:
            lines.append(
                f"method: a span tagger learned from {len(self.examples)} examples (threshold "
                "and confidence fitted on held-out folds of them); the LLM is not asked"
            )
        else:
            lines.append(
                "method: allowed values found in the text (no examples: confidence not fitted, "
                "every value asks for review); the LLM is not asked"
            )
        return "\n".join(lines)

    def job(self, **overrides: Unpack[ExtractorOverrides]) -> ExtractJob:
        """The per-product work with these option overrides."""
        options = with_overrides(self.options, overrides, what="extract")
        return ExtractJob(self, options)

    async def aextract(self, product: ProductLike) -> Extraction:
        """The attributes of one product; a failure is an Extraction with ``error`` set."""
        return located(await self._runner.one(product, self.job()), product)

    def extract(self, product: ProductLike) -> Extraction:
        """Blocking ``aextract``."""
        return self._runner.blocking(self.aextract(product))

    def aiter_done(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[Done[Extraction]]:
        """One Extraction per input, in order, beside its input and position. With a
        categorizer, its own batch run chooses the categories (its embeddings batched)."""
        if self.categorizer is None:
            done = self._runner.stream_done(
                products, self.job(), label="extract", progress=progress, start=start, total=total
            )
        else:
            done = self._after_categories(products, progress=progress, start=start, total=total)
        return _in_raw_text(done)

    async def _after_categories(
        self,
        products: Iterable[Item],
        *,
        progress: bool | None,
        start: int,
        total: int | None,
    ) -> AsyncIterator[Done[Extraction]]:
        assert self.categorizer is not None
        job = self.job()
        chosen = self.categorizer.aiter_done(products, progress=progress, start=start, total=total)
        async for done in chosen:
            try:
                if isinstance(done.item, InputError):
                    raise done.item
                product = coerce_product(done.item, done.index)
                result = await job.extract(product, done.result)
            except ConfigError:
                raise
            except Exception as exc:  # one product's failure is its record, as in the runner
                result = job.failed(done.result.product_id, exc)
            yield Done(done.index, done.item, result)

    async def aiter_extract(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> AsyncIterator[Extraction]:
        """One Extraction per input, in order, with bounded concurrency."""
        async for done in self.aiter_done(products, progress=progress):
            yield done.result

    async def aextract_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Extraction]:
        """Every product's attributes; one result (or error record) per input, in order."""
        return [result async for result in self.aiter_extract(products, progress=progress)]

    def extract_many(
        self, products: Iterable[Item], *, progress: bool | None = None
    ) -> list[Extraction]:
        """Blocking ``aextract_many``."""
        return self._runner.blocking(self.aextract_many(products, progress=progress))

    def extract_frame(
        self,
        frame: FrameT,
        *,
        prefix: str = "",
        progress: bool | None = None,
        columns: Columns | None = None,
    ) -> FrameT:
        """A copy of the pandas DataFrame ``frame`` with each row's results in new columns:
        ``value_<attribute>`` per attribute, ``extract_category``, ``extract_attributes`` (every
        answer with its source and confidence), ``extract_dropped`` and ``error``, each named
        ``prefix + name``.
        ``columns``: as in ``Classifier.classify_frame``; the category column
        (``category_field``) is read as the product's category."""
        chosen = replace(columns or Columns(), category=self.options.category_field)
        results = self.extract_many(frame_records(frame, chosen), progress=progress)
        out = with_results(frame, results, EXTRACT_COLUMNS, prefix)
        names = list(dict.fromkeys(name for r in results for name in r.attributes))
        values = {
            f"{prefix}value_{name}": [
                r.attributes[name].value if name in r.attributes else None for r in results
            ]
            for name in names
        }
        return with_columns(out, values)


def _examples(given: object) -> list[AttributeExample] | None:
    """``examples=``: a JSONL file's path, or AttributeExamples; ConfigError for anything
    else (naming what was given)."""
    if given is None:
        return None
    if isinstance(given, (str, Path)):
        return read_examples(Path(given))
    if isinstance(given, Iterable) and not isinstance(given, (bytes, Mapping)):
        listed = list(given)
        if all(isinstance(e, AttributeExample) for e in listed):
            return listed
    raise ConfigError(
        "examples= takes the path of a JSONL file of labelled products or a list of "
        f"AttributeExample, not {type(given).__name__}"
    )


#: the code a saved tagger's weights depend on (see ``Extractor._examples_digest``)
_TAGGER_CODE = b"".join(
    Path(__file__).with_name(name).read_bytes() for name in ("spans.py", "tagger.py")
)


class ExtractJob:
    """One product's attributes under one set of options."""

    def __init__(self, extractor: Extractor, options: ExtractOptions) -> None:
        self.extractor = extractor
        self.options = options

    def failed(self, product_id: str, error: BaseException) -> Extraction:
        return Extraction(product_id=product_id, error=error_record(error))

    async def run(self, product: Product) -> Extraction:
        categorizer = self.extractor.categorizer
        chosen = await categorizer.aclassify(product) if categorizer is not None else None
        return await self.extract(product, chosen)

    async def extract(self, product: Product, chosen: Classification | None) -> Extraction:
        """The product's attributes: those of its category, or of the one ``chosen`` for it
        (a categorizer's answer; its error is the product's)."""
        tagger = await self.extractor.tagger()
        category = product.attributes.get(self.options.category_field, "") or None
        guessed = category is None and chosen is None
        if guessed:
            category = self.extractor.guessed_category(product.title)
        result = Extraction(
            product_id=product.id, category=category, category_guessed=guessed and bool(category)
        )
        if chosen is not None:
            if chosen.error is not None:
                raise InputError(f"no category for its attributes: {chosen.error.message}")
            category = chosen.category_id
            result.category = " > ".join(chosen.path)
            result.category_id = category
        fields = [("title", product.title)]
        if product.description:
            fields.append(
                ("description", product.description[: self.options.max_description_chars])
            )
        stated = [
            (f"attributes.{name}", value)
            for name, value in product.attributes.items()
            if name != self.options.category_field and value
        ]
        schema = self.extractor.schema
        # A category the schema does not list gets the common attributes, never every
        # category's; one named by the input but absent from the examples is a mistake to say.
        unknown = category is not None and schema.categories and schema.own(category) is None
        if unknown and self.extractor.examples:
            known = ", ".join(sorted(schema.categories)[:8])
            raise InputError(
                f"category {category!r} has no attributes in the examples (they have: "
                f"{known}{', ...' if len(schema.categories) > 8 else ''})"
            )
        specs = schema.for_category(category)
        free = [spec.name for spec in specs if not spec.values]
        ranked = (
            {name: tagger.scored(fields, category or "", name) for name in free}
            if tagger is not None
            else {}
        )
        values = decoded(ranked, tagger.calibration.threshold) if tagger is not None else {}
        for spec in specs:
            if spec.values:
                answer = allowed_value(related(stated, spec.name) + fields, spec)
            elif tagger is not None:
                answer = tagged_value(
                    tagger, ranked[spec.name], values.get(spec.name), self.options
                )
            else:  # checked when the extractor was made; kept for a schema changed later
                answer = AttributeValue()
            if answer.value is not None and not grounded(answer, fields + stated, spec):
                result.dropped += 1
                answer = AttributeValue(confidence=0.0, needs_review=True)
            if result.category_guessed:
                answer.needs_review = True
            result.attributes[spec.name] = answer
        return result


async def _in_raw_text(
    done: AsyncIterator[Done[Extraction]],
) -> AsyncIterator[Done[Extraction]]:
    async for one in done:
        yield Done(one.index, one.item, located(one.result, one.item))


__all__ = ["Categorizer", "ExtractJob", "Extractor"]
