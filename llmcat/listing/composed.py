"""Composed copy: listing copy built from the product's own fields, the copy baseline. Pure.

Every fact comes from the product (title, brand, attributes, description, category) and every
value is written as given; the only words added are the labels of the templates below (English
and Chinese; another language gets the values without labels). So composed copy is grounded by
construction, and it is what ``Describer`` returns when the model's copy still has findings after
the regeneration (``fallback="compose"``). Pieces that would repeat a phrase or restate the title
are left out, checked by the same functions as model copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from llmcat.config.options import CopyLimits
from llmcat.io.specifications import for_shoppers, says_something
from llmcat.listing.boilerplate import boilerplate_in, product_sentences
from llmcat.listing.degenerate import (
    attributes_to_mention,
    body_floor,
    repetitions,
    restates,
    tokens,
)
from llmcat.listing.schema import ListingCopy, count_words, cut_to_limits, field_limits
from llmcat.types import Product


@dataclass(frozen=True)
class Phrasing:
    """The words one language's composed copy adds to the product's own."""

    labels: Mapping[str, str]
    label: str  # "{label}: {value}"
    join: str  # between facts in one bullet
    sentence_end: str
    by_brand: str  # "{title} by {brand}"
    category: str
    summary: str  # the bulleted facts in one body sentence: "{title}: {facts}"
    summary_fact: str  # one fact in it: "{label} {value}"


# Attribute names for common keys (normalised: lower case, spaces for "_" and "-").
_EN_LABELS = {
    "brand": "Brand",
    "colour": "Colour",
    "color": "Colour",
    "size": "Size",
    "material": "Material",
    "fabric": "Fabric",
    "weight": "Weight",
    "net weight": "Net weight",
    "capacity": "Capacity",
    "volume": "Volume",
    "dimensions": "Dimensions",
    "model": "Model",
    "model name": "Model name",
    "model number": "Model number",
    "storage": "Storage",
    "pattern": "Pattern",
    "style": "Style",
    "type": "Type",
    "fit": "Fit",
    "gender": "For",
    "ideal for": "Ideal for",
    "pack of": "Pack of",
    "quantity": "Quantity",
    "power": "Power",
    "battery": "Battery",
    "warranty": "Warranty",
    "scent": "Scent",
    "flavour": "Flavour",
    "flavor": "Flavour",
    "closure": "Closure",
    "network": "Network",
    "sleeve": "Sleeve",
    "occasion": "Occasion",
    "roast": "Roast",
    "lighting": "Lighting",
    "age": "Age",
    "shape": "Shape",
    "finish": "Finish",
}
_ZH_LABELS = {
    "brand": "品牌",
    "colour": "颜色",
    "color": "颜色",
    "size": "尺码",
    "material": "材质",
    "fabric": "面料",
    "weight": "重量",
    "net weight": "净重",
    "capacity": "容量",
    "volume": "容量",
    "dimensions": "尺寸",
    "model": "型号",
    "model name": "型号名称",
    "model number": "型号",
    "storage": "存储容量",
    "pattern": "图案",
    "style": "款式",
    "type": "类型",
    "fit": "版型",
    "gender": "适用人群",
    "ideal for": "适用人群",
    "pack of": "每包数量",
    "quantity": "数量",
    "power": "功率",
    "battery": "电池",
    "warranty": "保修",
    "scent": "香型",
    "flavour": "口味",
    "flavor": "口味",
    "closure": "闭合方式",
    "network": "网络",
    "sleeve": "袖长",
    "occasion": "场合",
    "roast": "烘焙程度",
    "lighting": "照明",
    "age": "适用年龄",
    "shape": "形状",
    "finish": "表面处理",
}
PHRASINGS: dict[str, Phrasing] = {
    "en": Phrasing(
        _EN_LABELS,
        "{label}: {value}",
        "; ",
        ".",
        "{title} by {brand}",
        "Category",
        "{title}: {facts}",
        "{label} {value}",
    ),
    "zh": Phrasing(
        _ZH_LABELS,
        "{label}：{value}",
        "；",
        "。",
        "{brand} {title}",
        "类目",
        "商品名称：{title}；{facts}",
        "{label}：{value}",
    ),
}


#: facts in one bullet at most: a bullet is read at a glance; the rest go to the body
FACTS_PER_BULLET = 3


def _key(name: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", name).lower().split())


def _facts(product: Product, phrasing: Phrasing | None) -> list[tuple[str, str]]:
    """(label, value) per attribute with a value: short values first (the specifications a
    shopper scans, and the ones the copy checks ask for), each group in the merchant's order;
    the brand attribute is left to the title."""
    facts = []
    for name, value in product.attributes.items():
        value = " ".join(value.split())
        if not says_something(value) or (_key(name) == "brand" and product.brand):
            continue
        if boilerplate_in(value) or not for_shoppers(name):
            continue  # "Call Flipkart Customer Care", warranty terms, style codes
        given = name.strip()
        if phrasing is PHRASINGS["en"]:
            given = given[:1].upper() + given[1:]
        label = phrasing.labels.get(_key(name), given) if phrasing else ""
        facts.append((label, value))
    short = set(attributes_to_mention({str(i): v for i, (_, v) in enumerate(facts)}, len(facts)))
    return sorted(facts, key=lambda fact: fact[1] not in short)


def _fact_text(fact: tuple[str, str], phrasing: Phrasing | None) -> str:
    label, value = fact
    return phrasing.label.format(label=label, value=value) if phrasing else value


def compose_copy(
    product: Product,
    limits: CopyLimits,
    language: str = "en",
    category: str | None = None,
    min_body_words: int = 25,
) -> ListingCopy:
    """Title, bullets and body from ``product``'s fields, within ``limits``: the attributes
    first, then the description's sentences, each said once. A product with too few facts gets
    fewer bullets rather than padding, and one with nothing beyond its title an empty body (the
    ``thin`` finding says why) rather than the title again."""
    phrasing = PHRASINGS.get(language)
    lim = field_limits(limits)
    title = " ".join(product.title.split())
    brand = " ".join(product.brand.split())
    if brand and brand.lower() not in title.lower():
        title = (
            phrasing.by_brand.format(title=title, brand=brand) if phrasing else f"{brand} {title}"
        )
    title = cut_to_limits(title, *lim["title"])
    title_words = set(tokens(title)) | set(tokens(product.title)) | set(tokens(brand))
    facts = [_fact_text(f, phrasing) for f in _facts(product, phrasing)]
    sentences = product_sentences(product.description, language)
    separator = phrasing.join if phrasing else " · "

    def fits(text: str, kind: str) -> bool:
        words, chars = lim[kind]
        return count_words(text) <= words and (chars is None or len(text) <= chars)

    given = f"{product.title} {brand} {product.description} {category or ''} " + " ".join(
        f"{k}: {v}" for k, v in product.attributes.items()
    )
    known = frozenset(tokens(given))

    def fresh(text: str) -> bool:
        return not repetitions(text, known, given) and not restates(
            text, title_words, product.attributes
        )

    def layout(most: int) -> tuple[list[str], str]:
        # Bullets: the attributes in order, at most ``most`` to a bullet; a fact that would make
        # its bullet repeat a phrase or restate the title is left to the body. Then the
        # description's sentences that fit a bullet whole (a sentence cut short says less).
        bullets: list[str] = []
        used: set[str] = set()
        per_bullet = min(most, max(1, -(-len(facts) // max(limits.bullets, 1))))
        current: list[str] = []
        for fact in facts:
            if len(bullets) >= limits.bullets:
                break
            candidate = separator.join([*current, fact])
            if current and (len(current) >= per_bullet or not fits(candidate, "bullet")):
                bullets.append(separator.join(current))
                current, candidate = [], fact
                if len(bullets) >= limits.bullets:
                    break
            if fits(candidate, "bullet") and fresh(candidate):
                current.append(fact)
                used.add(fact)
        if current and len(bullets) < limits.bullets:
            bullets.append(separator.join(current))
        else:
            used -= set(current)
        extra = list(sentences)
        if category:
            extra.append(_labelled(phrasing.category if phrasing else "", category, phrasing))
        if brand and not any(brand in b for b in bullets):
            brand_label = phrasing.labels["brand"] if phrasing else ""
            extra.append(_labelled(brand_label, brand, phrasing))
        for sentence in extra:
            if len(bullets) >= limits.bullets:
                break
            if fits(sentence, "bullet") and fresh(sentence) and sentence not in bullets:
                bullets.append(sentence)
                used.add(sentence)

        # Body: what no bullet says (the description's other sentences, the other attributes,
        # the category), as far as the limit allows; a piece that would repeat a phrase of the
        # body so far is left out. The title is not said again.
        end = phrasing.sentence_end if phrasing else "."

        def sentence_of(text: str) -> str:
            return text if text[-1] in ".!?。！？" else text + end

        pieces = [sentence_of(s) for s in sentences if s not in used and fresh(s)]
        pieces += [sentence_of(f) for f in facts if f not in used]
        if category and not any(category in b for b in bullets):
            pieces.append(
                sentence_of(_labelled(phrasing.category if phrasing else "", category, phrasing))
            )
        body = ""
        for piece in pieces:
            joined = body + piece if body.endswith("。") else f"{body} {piece}".strip()
            if not fits(joined, "body"):
                if not body:  # a first sentence over the limit: cut, rather than no body
                    body = cut_to_limits(piece, *lim["body"])
                continue
            if repetitions(joined, known, given) and body:
                continue
            body = joined
        return bullets, body

    # Bullets take up to three facts each; where that leaves the body under the floor, fewer,
    # so that the body has facts of its own rather than repeating the bullets.
    floor = body_floor(min_body_words, limits.body_words, given, product.title)
    bullets, body = layout(FACTS_PER_BULLET)
    for most in range(FACTS_PER_BULLET - 1, 0, -1):
        if count_words(body) >= floor:
            break
        bullets, body = layout(most)
    if count_words(body) < floor:
        # Still short: the bulleted facts once more, as one sentence of their own
        summary = _summary(title, _facts(product, phrasing), " ".join(bullets), phrasing)
        joined = body + summary if body.endswith("。") else f"{body} {summary}".strip()
        if summary and fits(joined, "body"):
            body = joined
    return ListingCopy(title=title, bullets=tuple(bullets), body=body)


def _summary(
    title: str, facts: list[tuple[str, str]], bulleted: str, phrasing: Phrasing | None
) -> str:
    """The short facts that ``bulleted`` holds as one sentence about the product ("Nike Air
    Zoom Pegasus 40: colour black, size UK 9."): a long fact alone would be its bullet said
    twice."""
    english = phrasing is PHRASINGS["en"]
    parts = [
        phrasing.summary_fact.format(label=label.lower() if english else label, value=value)
        if phrasing and label
        else value
        for label, value in facts
        if _fact_text((label, value), phrasing) in bulleted and count_words(f"{label} {value}") < 5
    ]
    if not parts:
        return ""
    text = (phrasing.join if phrasing and not english else ", ").join(parts)
    subject = re.sub(r"[.!?。！？]\s+", " ", title)  # one sentence, whatever the title holds
    sentence = phrasing.summary if phrasing else "{title}: {facts}"
    return sentence.format(title=subject, facts=text) + (phrasing.sentence_end if phrasing else ".")


def _labelled(label: str, value: str, phrasing: Phrasing | None) -> str:
    return phrasing.label.format(label=label, value=value) if phrasing and label else value
