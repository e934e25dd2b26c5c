"""A deterministic check that generated copy states nothing the input does not support. Pure.

A quantity is a number with an optional unit ("1.5 kg", "500g", "15.6-inch", "2 件", "30%").
Units are normalised to a base unit per dimension (1 kg == 1000 g, 1 m == 100 cm, 1 L == 1000 ml,
1 公斤 == 1000 克), so a rewrite in other units is not flagged. A quantity in the copy is supported
when the input holds the same value in the same dimension, or (for a bare number) the same value
at all. Materials, certifications and brands (from the vocabularies below, in English and
Chinese, plus any ``known_brands`` the caller passes) must appear in the input when the copy names
them. Attribute values the caller marks as must-mention are checked for presence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llmcat.types import Finding

# unit spelling -> (dimension, factor to the base unit)
_UNITS: dict[str, tuple[str, float]] = {}


def _add(dimension: str, factor: float, *names: str) -> None:
    for name in names:
        _UNITS[name] = (dimension, factor)


_add("length", 1.0, "mm", "millimeter", "millimeters", "millimetre", "millimetres", "毫米")
_add("length", 10.0, "cm", "centimeter", "centimeters", "centimetre", "centimetres", "厘米", "公分")
_add("length", 1000.0, "m", "meter", "meters", "metre", "metres", "米")
_add("length", 1e6, "km", "kilometer", "kilometers", "公里", "千米")
_add("length", 25.4, "in", "inch", "inches", '"', "″", "英寸")
_add("length", 304.8, "ft", "foot", "feet", "英尺")
_add("mass", 0.001, "mg", "milligram", "milligrams", "毫克")
_add("mass", 1.0, "g", "gm", "gms", "gram", "grams", "gramme", "克")
_add("mass", 1000.0, "kg", "kgs", "kilogram", "kilograms", "公斤", "千克")
_add("mass", 500.0, "斤")
_add("mass", 453.592, "lb", "lbs", "pound", "pounds", "磅")
_add("mass", 28.3495, "oz", "ounce", "ounces", "盎司")
_add("volume", 1.0, "ml", "milliliter", "milliliters", "millilitre", "millilitres", "毫升")
_add("volume", 1000.0, "l", "liter", "liters", "litre", "litres", "ltr", "升")
_add("data", 1.0, "mb", "兆")
_add("data", 1000.0, "gb", "g内存")
_add("data", 1e6, "tb")
_add("power", 1.0, "w", "watt", "watts", "瓦")
_add("power", 1000.0, "kw", "千瓦")
_add("voltage", 1.0, "v", "volt", "volts", "伏")
_add("charge", 1.0, "mah", "毫安时")
_add("frequency", 1.0, "hz", "赫兹")
_add("frequency", 1e3, "khz")
_add("frequency", 1e6, "mhz")
_add("frequency", 1e9, "ghz")
_add("percent", 1.0, "%", "percent", "％")
_add("pixels", 1.0, "mp", "megapixel", "megapixels", "万像素")
_add(
    "count",
    1.0,
    "pcs",
    "pc",
    "pieces",
    "piece",
    "pack",
    "packs",
    "pair",
    "pairs",
    "件",
    "个",
    "只",
    "片",
    "包",
    "双",
    "套",
)
_add("time", 1.0, "h", "hr", "hrs", "hour", "hours", "小时")
_add("time", 1 / 60, "min", "mins", "minute", "minutes", "分钟")
_add("years", 1.0, "year", "years", "yr", "yrs", "年")
_add("days", 1.0, "day", "days", "天")

_UNIT_ALTERNATION = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_QUANTITY = re.compile(
    # ASCII-only boundaries: a CJK character counts as \w in Python, and Chinese copy writes
    # numbers right after words ("重200克").
    # A unit on the same line only: "10/100\nIn The Box" is no 100 inches.
    r"(?<![A-Za-z0-9_.])(\d+(?:[.,]\d+)*)[ \t\u00a0]*(?:-[ \t]*)?("
    + _UNIT_ALTERNATION
    + r")?(?![A-Za-z0-9])(?!-[A-Za-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quantity:
    """A number, normalised to its dimension's base unit ('' for a bare number)."""

    dimension: str
    value: float
    text: str


def _number(raw: str) -> float | None:
    # "1,299" is a thousands separator; "1,5" a decimal comma.
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw):
        raw = raw.replace(",", "")
    else:
        raw = raw.replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        return None


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text`` with its unit, normalised."""
    found = []
    for match in _QUANTITY.finditer(text):
        value = _number(match.group(1))
        if value is None:
            continue
        unit = (match.group(2) or "").lower()
        dimension, factor = _UNITS.get(unit, ("", 1.0))
        found.append(Quantity(dimension, round(value * factor, 6), match.group(0).strip()))
    return found


MATERIALS = (
    "cotton",
    "organic cotton",
    "polyester",
    "nylon",
    "spandex",
    "elastane",
    "lycra",
    "rayon",
    "viscose",
    "linen",
    "silk",
    "satin",
    "wool",
    "merino",
    "cashmere",
    "alpaca",
    "fleece",
    "denim",
    "velvet",
    "suede",
    "leather",
    "genuine leather",
    "faux leather",
    "pu leather",
    "canvas",
    "mesh",
    "down",
    "memory foam",
    "latex",
    "rubber",
    "silicone",
    "plastic",
    "abs",
    "polycarbonate",
    "acrylic",
    "pvc",
    "glass",
    "tempered glass",
    "crystal",
    "ceramic",
    "porcelain",
    "stoneware",
    "marble",
    "granite",
    "wood",
    "solid wood",
    "oak",
    "teak",
    "walnut",
    "pine",
    "bamboo",
    "mdf",
    "steel",
    "stainless steel",
    "carbon steel",
    "cast iron",
    "iron",
    "aluminium",
    "aluminum",
    "titanium",
    "copper",
    "brass",
    "bronze",
    "gold",
    "silver",
    "sterling silver",
    "platinum",
    "carbon fiber",
    "carbon fibre",
    "graphite",
    "kevlar",
    "纯棉",
    "棉",
    "涤纶",
    "尼龙",
    "氨纶",
    "亚麻",
    "真丝",
    "丝绸",
    "羊毛",
    "羊绒",
    "牛仔",
    "真皮",
    "皮革",
    "人造革",
    "帆布",
    "网布",
    "记忆棉",
    "乳胶",
    "橡胶",
    "硅胶",
    "塑料",
    "玻璃",
    "钢化玻璃",
    "水晶",
    "陶瓷",
    "大理石",
    "实木",
    "木",
    "竹",
    "不锈钢",
    "铸铁",
    "铝",
    "铝合金",
    "钛",
    "铜",
    "黄金",
    "纯银",
    "碳纤维",
)
CERTIFICATIONS = (
    "ce certified",
    "ce marked",
    "fda approved",
    "fda cleared",
    "ul listed",
    "ul certified",
    "etl listed",
    "rohs",
    "reach compliant",
    "energy star",
    "fsc",
    "oeko-tex",
    "gots",
    "bpa-free",
    "bpa free",
    "usda organic",
    "certified organic",
    "organic",
    "vegan",
    "cruelty-free",
    "hypoallergenic",
    "dermatologically tested",
    "clinically proven",
    "iso 9001",
    "waterproof",
    "water-resistant",
    "fireproof",
    "shatterproof",
    "non-toxic",
    "antibacterial",
    "medical grade",
    "food grade",
    "有机",
    "认证",
    "无毒",
    "防水",
    "防火",
    "抗菌",
    "医用级",
    "食品级",
    "低敏",
    "临床验证",
)
BRANDS = (
    "nike",
    "adidas",
    "puma",
    "reebok",
    "asics",
    "new balance",
    "under armour",
    "levi's",
    "zara",
    "h&m",
    "uniqlo",
    "gucci",
    "prada",
    "chanel",
    "dior",
    "rolex",
    "casio",
    "fossil",
    "seiko",
    "titan",
    "apple",
    "samsung",
    "sony",
    "lg",
    "xiaomi",
    "huawei",
    "oppo",
    "vivo",
    "oneplus",
    "google",
    "microsoft",
    "dell",
    "hp",
    "lenovo",
    "asus",
    "acer",
    "intel",
    "amd",
    "nvidia",
    "canon",
    "nikon",
    "fujifilm",
    "gopro",
    "bose",
    "jbl",
    "philips",
    "panasonic",
    "bosch",
    "siemens",
    "dyson",
    "ikea",
    "lego",
    "mattel",
    "hasbro",
    "barbie",
    "disney",
    "loreal",
    "l'oreal",
    "maybelline",
    "nivea",
    "dove",
    "colgate",
    "gillette",
    "pampers",
    "huggies",
    "nestle",
    "coca-cola",
    "pepsi",
    "tefal",
    "prestige",
    "pigeon",
    "milton",
    "cello",
    "tupperware",
    "dewalt",
    "makita",
    "stanley",
    "black+decker",
    "3m",
    "logitech",
    "耐克",
    "阿迪达斯",
    "苹果",
    "三星",
    "索尼",
    "小米",
    "华为",
    "联想",
    "佳能",
    "尼康",
    "飞利浦",
    "宜家",
    "乐高",
)


def _mentions(term: str, text: str) -> bool:
    """Whole-word, case-insensitive presence (plain substring for CJK terms)."""
    if re.search(r"[\u3400-\u9fff]", term):
        return term in text
    return (
        re.search(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", text, re.IGNORECASE) is not None
    )


def unsupported_terms(text: str, source: str, *, known_brands: Iterable[str] = ()) -> list[str]:
    """Materials, certifications and brands named in ``text`` that ``source`` never mentions.

    A term inside a longer supported term is not flagged ("steel" in "stainless steel" when the
    input says "stainless steel"), and a longer term is flagged only once.
    """
    vocabulary = sorted(
        {*MATERIALS, *CERTIFICATIONS, *BRANDS, *(b.lower() for b in known_brands if b)},
        key=len,
        reverse=True,
    )
    found: list[str] = []
    for term in vocabulary:
        if not _mentions(term, text) or _mentions(term, source):
            continue
        if any(term in longer.lower() for longer in found):
            continue
        supported_longer = [
            t
            for t in vocabulary
            if len(t) > len(term) and term in t and _mentions(t, text) and _mentions(t, source)
        ]
        if supported_longer:
            continue
        found.append(term)
    return found


# Codes that carry digits but are no plain quantity: model numbers and sockets ("B22", "RL40",
# "1080p", "3-in-1") and dotted numbers ("1.1.1.1"). They must appear in the input as written.
_CODE = re.compile(
    r"(?<![\w.-])(?:(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
    r"|\d+(?:\.\d+){2,})(?![\w-])(?!\.\w)"
)


def codes(text: str) -> list[str]:
    """Alphanumeric codes and dotted numbers in ``text`` that are not number-and-unit quantities."""
    found = []
    for match in _CODE.finditer(text):
        token = match.group(0)
        quantity = _QUANTITY.fullmatch(token)
        if quantity and _number(quantity.group(1)) is not None:
            continue  # "500g", "2-pack": a quantity, checked by value and unit instead
        found.append(token)
    return found


def _matches(claim: Quantity, support: Iterable[Quantity]) -> bool:
    for s in support:
        if abs(s.value - claim.value) > 1e-6 * max(1.0, abs(claim.value)):
            continue
        if claim.dimension == "" or s.dimension == claim.dimension:
            return True
    return False


def input_text(product_fields: Mapping[str, str], attributes: Mapping[str, str]) -> str:
    """All input text the copy may draw facts from."""
    parts = [v for v in product_fields.values() if v]
    parts += [f"{k}: {v}" for k, v in attributes.items()]
    return "\n".join(parts)


def check_copy(
    fields: Mapping[str, str],
    source: str,
    *,
    must_mention: Iterable[str] = (),
    known_brands: Iterable[str] = (),
) -> list[Finding]:
    """Findings for the generated ``fields`` (name -> text) against the ``source`` text."""
    support = quantities(source)
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for name, text in fields.items():
        for claim in quantities(text):
            if _matches(claim, support):
                continue
            key = (claim.dimension, str(claim.value))
            if key in seen:
                continue
            seen.add(key)
            findings.append(Finding(kind="unsupported_number", text=claim.text, field=name))
    source_lower = source.lower()
    for name, text in fields.items():
        for code in codes(text):
            key = ("code", code.lower())
            if key in seen or code.lower() in source_lower:
                continue
            seen.add(key)
            findings.append(Finding(kind="unsupported_number", text=code, field=name))
    flagged_terms: set[str] = set()
    for name, text in fields.items():
        for term in unsupported_terms(text, source, known_brands=known_brands):
            if term not in flagged_terms:
                flagged_terms.add(term)
                findings.append(Finding(kind="unsupported_term", text=term, field=name))
    everything = " ".join(fields.values()).lower()
    for term in must_mention:
        if term and term.lower() not in everything:
            findings.append(Finding(kind="missing_attribute", text=term))
    return findings


def used_attributes(fields: Mapping[str, str], attributes: Mapping[str, str]) -> list[str]:
    """Names of the attributes whose value appears in the copy."""
    everything = " ".join(fields.values()).lower()
    return [k for k, v in attributes.items() if v and v.lower() in everything]
