"""Shop boilerplate: what a product page says about the shop, not the product. Pure.

Marketplace exports fill descriptions with the shop's own lines ("Buy X at Rs. 589 at
Flipkart.com. Only Genuine Products. Free Shipping."), prices, links, flattened specification
tables and text cut off mid-word. None of it belongs in listing copy: ``product_sentences`` keeps
the sentences that describe the product, and ``boilerplate_in`` names what copy must not say
(the ``boilerplate`` finding of ``degenerate.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sentencex

# Spans removed wherever they stand: a price, a link. The sentence around them may be the
# product's ("Price: Rs. 899 This curtain enhances the look...").
_PRICE = (
    r"(?:(?:price|mrp|offer price)\s*[:\-]?\s*)?"
    r"(?:(?:\brs\.?|\binr|₹|\busd|\bus\$|\beur|\bgbp|\$|€|£)\s?\d[\d,]*(?:\.\d+)?(?:\s?/-)?"
    r"|\d[\d,]*(?:\.\d+)?\s?(?:rs\b\.?|inr\b|€|eur\b|usd\b|dollars?\b|rupees?\b))"
)
# A bare domain only as ".com": "cotton.In" is two sentences that lost their space.
_LINK = r"(?:https?://\S+|www\.\S+|\b[\w-]+\.com\b(?:/\S*)?)"
_SPANS = re.compile(rf"{_PRICE}|{_LINK}", re.IGNORECASE)

# Shops whose name never describes a product.
SHOPS = ("flipkart", "amazon", "snapdeal", "cdiscount", "ebay", "walmart", "myntra", "aliexpress")

# Phrases that make a whole sentence the shop's.
_SHOP_PHRASES = [
    r"\bbuy\b.{0,160}?\b(?:at|for|online|from)\b",
    r"^\s*buy\b",
    r"\bshop\s+(?:for|online)\b",
    r"\border\s+(?:now|today|online)\b",
    r"\bfree\s+(?:shipping|delivery)\b",
    r"\bcash\s+on\s+delivery\b",
    r"\bgenuine\s+products?\b",
    r"\b\d+\s*-?\s*days?\s+(?:replacement|return|exchange|money\s*back)",
    r"\b(?:replacement|return)\s+guarantee\b",
    r"\b(?:only\s+in\s+india|in\s+india\s+only)\b",
    r"\bat\s+(?:the\s+)?(?:best|lowest|great)\s+prices?\b",
    r"\b(?:best|lowest)\s+prices?\s+(?:online|in\s+india|guaranteed)\b",
    r"\b(?:no\s+cost\s+)?emi\b",
    r"\bimages?\s+(?:displayed|shown)\b.{0,40}\breference\b",
    r"\bdisclaimer\b",
    r"\btoll\s*-?\s*free\b",
    r"\bcustomer\s+care\b",
    r"\b(?:rma|doa)\b",
    r"\bplease\s+note\b",
    r"\bcolou?rs?\s+may\s+(?:slightly\s+)?vary\b",
    r"\bactual\s+(?:product|set|item)s?\s+(?:may\s+)?(?:contains?|vary|differ)\b",
    r"^\s*reviews?\s+of\b",
    rf"\b(?:{'|'.join(SHOPS)})\b",
]
_SHOP_PHRASES += [rf"\bfor\s+{_PRICE}", rf"{_PRICE}\s+(?:online|only)\b"]
_SHOP = re.compile("|".join(_SHOP_PHRASES), re.IGNORECASE)

# Headers of the flattened tables some exports glue into the description: the rest of the
# segment is a specification dump (its facts come from the attributes instead).
_DUMP = re.compile(
    r"\b(?:specifications?\s+of\b|product\s+details\s+and\s+specifications\b|"
    r"technical\s+specifications?\b)",
    re.IGNORECASE,
)
# "<title> (variant) Price: Rs. 650 <description>" or "Key Features of <title> ...,<title>
# Price: Rs. 899 <description>": a price near the start ends the page's header.
_HEADER_PRICE = re.compile(r"\bprice\s*:?\s*" + _PRICE, re.IGNORECASE)
_HEADER_CHARS = 600
_ENDS = ".!?。！？…\"'”)"


def boilerplate_in(text: str) -> list[str]:
    """The boilerplate phrases in ``text`` (prices, links, shop names, shop slogans), as found."""
    found = [m.group(0).strip() for m in _SPANS.finditer(text)]
    found += [m.group(0).strip() for m in _SHOP.finditer(text)]
    return list(dict.fromkeys(f for f in found if f))


def is_boilerplate(sentence: str) -> bool:
    """True when ``sentence`` is the shop's, not the product's."""
    return bool(_SHOP.search(sentence))


def _without_header(text: str) -> str:
    found = _HEADER_PRICE.search(text[:_HEADER_CHARS])
    if found is None:
        return text
    return re.sub(r"^\s*(?:only\b|/-)\s*[.!]?", "", text[found.end() :], flags=re.IGNORECASE)


def product_sentences(text: str, language: str = "en") -> list[str]:
    """The sentences of a description that describe the product: the shop's sentences, prices,
    links, specification dumps, a last sentence cut off mid-way and repeated sentences left
    out, in order. Sentences are found by sentencex (``Rs.`` or ``z.B.`` end none); a line
    break always ends one."""
    kept: list[str] = []
    seen: set[str] = set()
    pieces = [p for line in _without_header(text).splitlines() for p in _segments(line)]
    for piece in pieces:
        for sentence in sentencex.segment(language, piece):
            if is_boilerplate(sentence):  # before the spans go: "Flipkart.com" is one
                continue
            sentence = _clean(sentence)
            if not sentence:
                continue
            key = _key(sentence)
            if key in seen or not key:
                continue
            seen.add(key)
            kept.append(sentence)
    if kept and _cut_off(kept[-1], text) and len(kept) > 1:
        kept.pop()
    return kept


def _segments(line: str) -> Iterable[str]:
    """A line without its specification dump, cut where an export joined two sections."""
    # "interiors.This curtain": sentences that lost their space, common in exports
    line = re.sub(r"(?<=[a-z]{2})([.!?])(?=[A-Z][a-z])", r"\1 ", line)
    dump = _DUMP.search(line)
    if dump is not None:
        line = line[: dump.start()]
    # Exports join their sections with "," and no space ("...tee.,Specifications of"), and
    # the shop's clauses to the product's with a spaced dash ("Brass Case - Great Discounts").
    return [part for part in re.split(r"(?<=[.!?]),(?=\S)|\s+-\s+", line) if part.strip()]


def _clean(sentence: str) -> str:
    sentence = _SPANS.sub(" ", sentence)
    sentence = " ".join(sentence.split()).strip(" ,;:-|")
    sentence = re.sub(r"\s+([.,;:!?])", r"\1", sentence)
    return sentence if re.search(r"\w", sentence) else ""


def _key(sentence: str) -> str:
    return " ".join(re.findall(r"\w+", sentence.lower()))


def _cut_off(sentence: str, text: str) -> bool:
    """True when ``sentence`` ends the text without ending itself: an export cut it off."""
    stripped = text.rstrip()
    return not sentence.endswith(tuple(_ENDS)) and not stripped.endswith(tuple(_ENDS))


__all__ = ["SHOPS", "boilerplate_in", "is_boilerplate", "product_sentences"]
