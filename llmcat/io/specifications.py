"""A specification cell as attributes: the formats catalogue exports write them in. Pure.

A product's attributes arrive as a JSON object (``{"Colour": "Red"}``), a JSON list of
``{"key": ..., "value": ...}`` objects or of ``[name, value]`` pairs (a Parquet map column
after a pandas round trip), the Ruby-hash text of Flipkart's crawl
(``{"product_specification"=>[{"key"=>"Brand", "value"=>"X"}, ...]}``), or lines of
``Name: value``. ``parse_specifications`` reads them all; the first value of a name wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from llmcat.errors import InputError

#: attribute values that say nothing of what a product is ("Barometer: No" on a watch)
EMPTY_VALUES = frozenset(["", "no", "none", "n/a", "na", "nil", "-", "not applicable", "null"])

_RUBY_PAIR = re.compile(r'"key"=>"((?:[^"\\]|\\.)*)",\s*"value"=>"((?:[^"\\]|\\.)*)"')
_LINE_PAIR = re.compile(r"^\s*([^:=]{1,60}?)\s*[:=]\s*(.+?)\s*$")


def parse_specifications(value: object) -> dict[str, str]:
    """``value`` (a mapping, a list of key/value objects, or text in one of the formats above)
    as name -> value; empty names and values are left out. Text in none of these formats is an
    InputError."""
    if isinstance(value, Mapping):
        return _pairs(value.items())
    if isinstance(value, list):
        return _pairs(_list_pairs(value))
    text = str(value).strip()
    if not text:
        return {}
    if "=>" in text:
        return _pairs(_RUBY_PAIR.findall(text))
    if text[0] in "{[":
        try:
            decoded = json.loads(text)
        except ValueError:
            raise InputError("the attributes are neither JSON nor Name: value lines") from None
        return parse_specifications(decoded)
    lines = [_LINE_PAIR.match(line) for line in re.split(r"[\n;|]", text) if line.strip()]
    if not lines or any(m is None for m in lines):
        raise InputError("the attributes are neither JSON nor Name: value lines")
    return _pairs((m.group(1), m.group(2)) for m in lines if m is not None)


#: attributes about the shop's terms or its stock keeping, not the product
_NOT_FOR_SHOPPERS = re.compile(
    r"warrant|\bservice\b|\breturn|\bcovered\b|\b(?:style|design|sku|ean|upc|asin)\s*code\b"
    r"|\bmodel\s*id\b|\bsku\b|\bean\b|\bupc\b",
    re.IGNORECASE,
)


def for_shoppers(name: str) -> bool:
    """False for an attribute about the shop's terms or stock keeping (warranty and service
    terms, returns, style and design codes, model ids, SKUs): listing copy leaves it out."""
    return not _NOT_FOR_SHOPPERS.search(name)


def says_something(value: str) -> bool:
    """False for an empty value and for one that only denies ("No", "N/A", "-")."""
    words = value.lower().split()
    # "NA cm": a form's empty field with its unit
    return " ".join(words) not in EMPTY_VALUES and not (len(words) == 2 and words[0] == "na")


def _list_pairs(items: list[object]) -> list[tuple[object, object]]:
    pairs: list[tuple[object, object]] = []
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            pairs.append((item[0], item[1]))
            continue
        if not isinstance(item, Mapping) or item.get("key", item.get("name")) is None:
            raise InputError(
                "the attributes are a list, but not of {key, value} objects or [name, value] pairs"
            )
        pairs.append((item.get("key", item.get("name")), item.get("value")))
    return pairs


def _pairs(pairs: Iterable[tuple[object, object]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if value is None or (isinstance(value, float) and value != value):  # NaN: a missing cell
            continue
        name, text = str(key).strip(), str(value).strip()
        if name and text and name not in out:
            out[name] = text
    return out


__all__ = ["EMPTY_VALUES", "for_shoppers", "parse_specifications", "says_something"]
