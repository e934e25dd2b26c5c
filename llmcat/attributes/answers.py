"""One attribute's answer, from the tagger's ranked runs or an attribute's allowed values,
and where it was read (pure): the field and characters, counted in the input as given.

- ``tagged_value``: the run joint decoding chose (or none), its calibrated confidence, and the
  next distinct runs as alternatives.
- ``allowed_value``: the first field's longest allowed value it states as whole words.
- ``title_values``: the built-in schema's values a title states, for listing copy.
- ``located``: sources moved from the folded text llmcat reads to the input's characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from llmcat.attributes.schema import AttributeSpec, Schema
from llmcat.attributes.tagger import ALTERNATIVES, Scored, SpanTagger
from llmcat.config.options import ExtractOptions
from llmcat.types import AttributeValue, Extraction, Product, ValueAlternative, ValueSource

if TYPE_CHECKING:
    from llmcat.attributes.spans import Span

#: confidence of a value matched among allowed values without examples to fit one
UNFITTED_CONFIDENCE = 0.5


def tagged_value(
    tagger: SpanTagger,
    ranked: Sequence[Scored],
    chosen: Scored | None,
    options: ExtractOptions,
) -> AttributeValue:
    """One attribute's answer from its ``ranked`` runs and the one joint decoding ``chosen``
    (None: no value); alternatives are the next distinct runs."""
    calibration = tagger.calibration
    others: list[ValueAlternative] = []
    seen = {chosen.span.text} if chosen is not None else set()
    for candidate in ranked:
        if candidate.span.text in seen:
            continue
        seen.add(candidate.span.text)
        others.append(
            ValueAlternative(
                value=candidate.span.text, confidence=round(calibration.value(candidate.score), 4)
            )
        )
        if len(others) == ALTERNATIVES:
            break
    if chosen is None:
        confidence = calibration.none(ranked[0].score if ranked else 0.0)
        return AttributeValue(
            confidence=round(confidence, 4),
            needs_review=confidence < options.review_threshold,
            alternatives=others,
        )
    confidence = calibration.value(chosen.score)
    return AttributeValue(
        value=chosen.span.text,
        source=_source(chosen.span),
        confidence=round(confidence, 4),
        needs_review=confidence < options.review_threshold,
        alternatives=others,
    )


def allowed_value(fields: Sequence[tuple[str, str]], spec: AttributeSpec) -> AttributeValue:
    """The first field's longest allowed value of ``spec`` that it states as whole words (any
    case), written as allowed, with where it was read. A bare number (``1``, ``42``) counts
    only in the product's own attribute of that name: in prose it is rarely a size."""
    own = f"attributes.{spec.name}".casefold()
    for field_name, text in fields:
        for value, pattern in _patterns(spec.values):
            if _BARE_NUMBER.fullmatch(value) and field_name.casefold() != own:
                continue
            found = pattern.search(text)
            if found:
                return AttributeValue(
                    value=value,
                    source=ValueSource(
                        field=field_name, start=found.start(), end=found.end(), read=found.group()
                    ),
                    confidence=UNFITTED_CONFIDENCE,
                    needs_review=True,
                )
    return AttributeValue(confidence=UNFITTED_CONFIDENCE, needs_review=True)


_BARE_NUMBER = re.compile(r"[\d.,/ -]+")


@lru_cache(maxsize=4096)
def _patterns(values: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    """Each allowed value with its whole-word pattern, longest first; any case, except a
    code (``IN``, ``US``: two or three capitals), which a word of prose (``in``, ``us``)
    must not be read as."""
    return [
        (
            value,
            re.compile(
                rf"(?<!\w){re.escape(value)}(?!\w)",
                0 if _CODE.fullmatch(value) else re.IGNORECASE,
            ),
        )
        for value in sorted(values, key=len, reverse=True)
    ]


_CODE = re.compile(r"[A-Z]{2,3}")


def title_values(product: Product, schema: Schema) -> dict[str, str]:
    """The values of ``schema``'s attributes with allowed values that ``product``'s title
    states and its own attributes do not speak of (a ``colour`` of its own: no Color read),
    written as allowed."""
    own = {_WORD_FOLDS.get(w, w) for name in product.attributes for w in _words(name)}
    found = {}
    for spec in schema.common:
        if not spec.values or own & {_WORD_FOLDS.get(w, w) for w in _words(spec.name)}:
            continue
        answer = allowed_value([("title", product.title)], spec)
        if answer.value is not None:
            found[spec.name] = answer.value
    return found


#: spellings of one word in attribute names
_WORD_FOLDS = {"colour": "color"}


def _words(name: str) -> set[str]:
    return set(_WORD.findall(name.casefold()))


def related(stated: Sequence[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """The product's own attributes that speak of ``name``: the one of that name first (any
    case), then those whose words hold its words or are held by them (``Strap Color`` for
    ``Color``, ``Color`` for ``Case color``), fewest other words first; never one that
    qualifies it otherwise (``Strap Color`` says nothing of the ``Case color``). A
    specification table's ``Color: Black`` says more than a title's word; its ``Model Name``
    says nothing of the fabric."""
    own = name.casefold()
    words = set(_WORD.findall(own))

    def their_words(field_name: str) -> set[str]:
        return set(_WORD.findall(field_name.removeprefix("attributes.").casefold()))

    related = [
        (field_name, text)
        for field_name, text in stated
        if words
        and (words <= their_words(field_name) or their_words(field_name) <= words)
        and their_words(field_name)
    ]
    return sorted(
        related,
        key=lambda pair: (
            pair[0].removeprefix("attributes.").casefold() != own,
            len(their_words(pair[0]) ^ words),
        ),
    )


_WORD = re.compile(r"[^\W\d_]{3,}")


def located(result: Extraction, item: object) -> Extraction:
    """``result`` with each source's characters counted in the input as given (llmcat reads a
    text with its runs of white space folded to one space, so ``Analog Watch  - For`` read as
    ``Analog Watch - For`` moves every later offset); ``read`` holds the input's characters
    there when they differ from the value."""
    for answer in result.attributes.values():
        source = answer.source
        if source is None or answer.value is None:
            continue
        raw = _raw_field(item, source.field)
        if raw is None or raw[source.start : source.end] == (source.read or answer.value):
            continue
        found = _raw_match(raw, source.read or answer.value, source.start)
        if found is not None:
            read = raw[found[0] : found[1]]
            answer.source = ValueSource(
                field=source.field,
                start=found[0],
                end=found[1],
                read=read if read != answer.value else None,
            )
    return result


def _raw_field(item: object, field: str) -> str | None:
    """The text of ``field`` (``title``, ``description``, ``attributes.<name>``) in an input
    item as given (a record, a Product, a bare title)."""
    if isinstance(item, str):
        return item if field == "title" else None
    if isinstance(item, Product):
        item = item.model_dump()
    if not isinstance(item, Mapping):
        return None
    if field.startswith("attributes."):
        attributes = item.get("attributes")
        value = (
            attributes.get(field.removeprefix("attributes."))
            if isinstance(attributes, Mapping)
            else None
        )
    else:
        value = item.get(field)
    return value if isinstance(value, str) else None


def _raw_match(raw: str, text: str, start: int) -> tuple[int, int] | None:
    """Where ``text`` (read at ``start`` of the folded field) stands in ``raw``: the same
    occurrence, its words apart by any white space."""
    pieces = text.split()
    if not pieces:
        return None
    pattern = re.compile(r"\s+".join(re.escape(p) for p in pieces), re.IGNORECASE)
    folded = " ".join(raw.split())
    before = sum(1 for m in pattern.finditer(folded) if m.start() < start)
    for n, match in enumerate(pattern.finditer(raw)):
        if n == before:
            return match.start(), match.end()
    return None


def _source(span: Span) -> ValueSource:
    return ValueSource(field=span.field, start=span.start, end=span.end)


def grounded(
    answer: AttributeValue, fields: Sequence[tuple[str, str]], spec: AttributeSpec
) -> bool:
    """Whether the value is the text at its source, or an allowed value."""
    if answer.value in spec.values:
        return True
    source = answer.source
    texts = dict(fields)
    return (
        source is not None
        and source.field in texts
        and texts[source.field][source.start : source.end] == answer.value
    )


__all__ = [
    "UNFITTED_CONFIDENCE",
    "allowed_value",
    "grounded",
    "located",
    "related",
    "tagged_value",
]
