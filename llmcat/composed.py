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

import sentencex

from .degenerate import attributes_to_mention, repetitions, restates, tokens
from .listing import count_words, cut_to_limits, field_limits
from .options import CopyLimits
from .types import Product


@dataclass(frozen=True)
class Phrasing:
    """The words one language's composed copy adds to the product's own."""

    labels: Mapping[str, str]
    label: str  # "{label}: {value}"
    join: str  # between facts in one bullet
    sentence_end: str
    by_brand: str  # "{title} by {brand}"
    category: str
    opening: str  # the body's first sentence: "{title}"


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
        _EN_LABELS, "{label}: {value}", "; ", ".", "{title} by {brand}", "Category", "{title}"
    ),
    "zh": Phrasing(
        _ZH_LABELS, "{label}：{value}", "；", "。", "{brand} {title}", "类目", "商品名称：{title}"
    ),
}


def _key(name: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", name).lower().split())


def _facts(product: Product, phrasing: Phrasing | None) -> list[tuple[str, str]]:
    """(label, value) per attribute with a value: short values first (the specifications a
    shopper scans, and the ones the copy checks ask for), each group in the merchant's order;
    the brand attribute is left to the title."""
    facts = []
    for name, value in product.attributes.items():
        value = " ".join(value.split())
        if not value or (_key(name) == "brand" and product.brand):
            continue
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


def _sentences(text: str, language: str) -> list[str]:
    """The sentences of ``text``, by sentencex (abbreviations such as "Rs." or "z.B." and
    decimals do not end a sentence; some 300 languages); a line break always ends one."""
    return [
        " ".join(sentence.split())
        for line in text.splitlines()
        for sentence in sentencex.segment(language, line)
        if sentence.strip()
    ]


def compose_copy(
    product: Product, limits: CopyLimits, language: str = "en", category: str | None = None
) -> dict[str, object]:
    """Title, bullets and body from ``product``'s fields, within ``limits``. A product with too
    few facts gets fewer bullets rather than padding."""
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
    facts = _facts(product, phrasing)
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

    # Bullets: the attributes in order, packed into as many bullets as the limits ask for; a fact
    # that would make its bullet repeat a phrase or restate the title is left to the body.
    bullets: list[str] = []
    per_bullet = max(1, -(-len(facts) // limits.bullets)) if limits.bullets else 0
    current: list[str] = []
    for fact in (_fact_text(f, phrasing) for f in facts):
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
    if current and len(bullets) < limits.bullets:
        bullets.append(separator.join(current))
    extra = _sentences(product.description, language)
    if category:
        extra.append(_labelled(phrasing.category if phrasing else "", category, phrasing))
    if brand and not any(brand in b for b in bullets):
        brand_label = phrasing.labels["brand"] if phrasing else ""
        extra.append(_labelled(brand_label, brand, phrasing))
    for sentence in extra:
        if len(bullets) >= limits.bullets:
            break
        bullet = cut_to_limits(sentence, *lim["bullet"])
        if bullet and fresh(bullet) and bullet not in bullets:
            bullets.append(bullet)

    # Body: the title, the description, every attribute, the category, as far as the limit
    # allows; a piece that would repeat a phrase of the body so far is left out.
    end = phrasing.sentence_end if phrasing else "."
    pieces = [(phrasing.opening.format(title=title) if phrasing else title) + end]
    pieces += [
        s if s[-1] in ".!?。！？" else s + end for s in _sentences(product.description, language)
    ]
    pieces += [_fact_text(f, phrasing) + end for f in facts]  # one by one: as many as fit
    if category:
        pieces.append(_labelled(phrasing.category if phrasing else "", category, phrasing) + end)
    body = ""
    for piece in pieces:
        joined = body + piece if body.endswith("。") else f"{body} {piece}".strip()
        if not fits(joined, "body"):
            if not body:
                body = cut_to_limits(joined, *lim["body"])
            continue
        if repetitions(joined, known, given) and body:
            continue
        body = joined
    return {"title": title, "bullets": bullets, "body": body}


def _labelled(label: str, value: str, phrasing: Phrasing | None) -> str:
    return phrasing.label.format(label=label, value=value) if phrasing and label else value
