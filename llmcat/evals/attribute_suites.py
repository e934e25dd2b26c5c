"""Attribute-extraction suites (``python -m evals run --task extract``): labelled products split
into the examples the extractor learns from and the products it is scored on. Both read the
shared folder (``$LLMCAT_SHARED_DIR``, else ``../shared``); nothing of them is stored here.

- ``oa-mine``: ``datasets/oa-mine/train.jsonl`` (1,452 Amazon titles) are the examples,
  ``test.jsonl`` (491) is scored; both read as published (``read_examples``).
- ``flipkart-attributes``: built from ``datasets/flipkart_1050.csv`` by
  ``flipkart_attribute_products``:

  1. a product's text is its ``product_name`` and its ``description`` with Flipkart's
     "Specifications of ..." dump cut off (from its first "Specifications of" to the end: that
     text renders ``product_specifications``, the answer), both cleaned as llmcat cleans every
     input (``clean_product``: whitespace folded, the description cut at 4,000 characters);
  2. its category is level 1 of ``product_category_tree`` (7 categories of 150 products);
  3. its values are the pairs of ``product_specifications`` whose key is one of ``KEYS`` and
     whose value (whitespace folded; empty and denying values such as "No" left out) occurs
     in the title or in that description as written: same case, not inside a longer word. A
     key of its category without such a pair states no value (a product whose text states
     none of its pairs is kept: it is scored on the values it should not give);
  4. each category's products, in file order, are shuffled by ``random.Random(SPLIT_SEED)``;
     the first half (rounded down) are the examples, the rest are scored.

``--limit N`` scores N products taken round-robin across categories (every category is seen in
a small run); the examples stay whole, so a limited run's answers are those of the full run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from llmcat.attributes.examples import AttributeExample, completed, read_examples
from llmcat.errors import ConfigError
from llmcat.evals.flipkart import category_path
from llmcat.evals.paths import flipkart_csv, oa_mine_jsonl
from llmcat.io.inputs import clean_product
from llmcat.io.specifications import parse_specifications, says_something
from llmcat.types import Product

#: the built-in extraction suites
EXTRACT_SUITES = ("oa-mine", "flipkart-attributes")
#: Flipkart's specification keys read as attributes: what a shopper filters by (what a product
#: is, is made of, looks like and is for), not dimensions, counts, codes or yes/no features
KEYS = (
    "Brand",
    "Color",
    "Material",
    "Fabric",
    "Type",
    "Ideal For",
    "Pattern",
    "Size",
    "Occasion",
    "Model Name",
    "Sleeve",
    "Neck",
    "Fit",
    "Shape",
    "Dial Shape",
    "Dial Color",
    "Strap Color",
    "Series",
    "Shade",
)
#: the seed of flipkart-attributes' split into examples and scored products
SPLIT_SEED = 0
#: where Flipkart's rendering of ``product_specifications`` starts in a description
SPEC_DUMP = "Specifications of"
#: changes when the build rule changes (part of the suite's digest)
BUILD_VERSION = 1


@dataclass(frozen=True)
class ScoredProduct:
    """A product the extractor answers, its category and its gold values per attribute (an
    empty tuple: the text states none; an attribute left out: none either)."""

    product: Product
    category: str
    gold: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ExtractSuite:
    """The examples to learn from and the products to score, with what identifies them."""

    name: str
    examples: list[AttributeExample]
    scored: list[ScoredProduct]
    dataset_sha256: str
    description: str


def is_extract_suite(name: str) -> bool:
    """Whether ``name`` is an attribute-extraction suite."""
    return name in EXTRACT_SUITES


def load_extract_suite(name: str, *, limit: int | None = None) -> ExtractSuite:
    """A built-in extraction suite by name; ``limit``: score N products (round-robin across
    categories)."""
    if name == "oa-mine":
        suite = load_oa_mine()
    elif name == "flipkart-attributes":
        suite = load_flipkart_attributes(flipkart_csv())
    else:
        raise ConfigError(f"unknown extraction suite {name!r}: use {' or '.join(EXTRACT_SUITES)}")
    if limit is not None:
        suite = replace(suite, scored=round_robin(suite.scored, limit))
    return suite


def _present(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(
            f"{path} not found: set LLMCAT_SHARED_DIR to the folder holding datasets/{what}"
        )
    return path


def load_oa_mine() -> ExtractSuite:
    """OA-Mine: its train split as the examples, its test split scored (ids ``test-<line>``)."""
    train = _present(oa_mine_jsonl("train"), "oa-mine/train.jsonl")
    test = _present(oa_mine_jsonl("test"), "oa-mine/test.jsonl")
    digest = hashlib.sha256()
    scored = []
    for file in (train, test):
        digest.update(hashlib.sha256(file.read_bytes()).hexdigest().encode())
    for n, example in enumerate(read_examples(test), 1):
        product = clean_product(Product(id=f"test-{n}", title=example.title))
        scored.append(ScoredProduct(product, example.category, dict(example.values)))
    return ExtractSuite(
        "oa-mine",
        read_examples(train),
        scored,
        digest.hexdigest(),
        "OA-Mine: train.jsonl as the examples, test.jsonl scored",
    )


def cut_specifications(description: str) -> str:
    """The description without Flipkart's "Specifications of ..." dump (it runs to the end)."""
    at = description.find(SPEC_DUMP)
    return description if at < 0 else description[:at].rstrip(" ,\n")


def _folded(text: str) -> str:
    return " ".join(text.split())


def occurs(value: str, text: str) -> bool:
    """Whether ``value`` is written in ``text``: same case, not inside a longer word."""
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text) is not None


def stated_pairs(specifications: Mapping[str, str], product: Product) -> dict[str, str]:
    """The pairs of ``KEYS`` whose value (whitespace folded) the title or the description
    states as written."""
    out = {}
    for key in KEYS:
        value = _folded(specifications.get(key, ""))
        if says_something(value) and (
            occurs(value, product.title) or occurs(value, product.description)
        ):
            out[key] = value
    return out


def flipkart_attribute_products(path: Path) -> list[tuple[Product, str, dict[str, str]]]:
    """Every row of the Flipkart CSV as (product, level-1 category, stated pairs): the
    product's title and its description without the specification dump, cleaned as any
    input is; the pairs as ``stated_pairs`` keeps them."""
    csv.field_size_limit(16 * 1024 * 1024)
    out = []
    with _present(path, path.name).open(encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            product = clean_product(
                Product(
                    id=row.get("uniq_id") or str(n),
                    title=row.get("product_name", ""),
                    description=cut_specifications(row.get("description", "")),
                )
            )
            category = category_path(row.get("product_category_tree", ""), 1)[0]
            specs = parse_specifications(row.get("product_specifications", ""))
            out.append((product, category, stated_pairs(specs, product)))
    return out


def load_flipkart_attributes(path: Path) -> ExtractSuite:
    """flipkart-attributes (see the module docstring): half of each category as examples."""
    by_category: dict[str, list[tuple[Product, str, dict[str, str]]]] = {}
    for row in flipkart_attribute_products(path):
        by_category.setdefault(row[1], []).append(row)
    rng = random.Random(SPLIT_SEED)
    learn: list[AttributeExample] = []
    score: list[tuple[Product, str, dict[str, str]]] = []
    for category in sorted(by_category):
        rows = by_category[category]
        rng.shuffle(rows)
        half = len(rows) // 2
        learn += [
            AttributeExample(p.title, c, {k: (v,) for k, v in pairs.items()}, p.description)
            for p, c, pairs in rows[:half]
        ]
        score += rows[half:]
    # a product whose text states none of its pairs is still an example: of stating nothing
    examples = completed(learn)
    scored = [ScoredProduct(p, c, {k: (v,) for k, v in pairs.items()}) for p, c, pairs in score]
    digest = hashlib.sha256(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    digest.update(json.dumps([BUILD_VERSION, SPLIT_SEED, KEYS]).encode())
    return ExtractSuite(
        "flipkart-attributes",
        examples,
        scored,
        digest.hexdigest(),
        f"Flipkart: specification pairs ({len(KEYS)} keys) whose value the title or the "
        f"description (its specification dump cut) states; half of each level-1 category "
        f"(seed {SPLIT_SEED}) as examples, the rest scored",
    )


def round_robin(scored: Sequence[ScoredProduct], limit: int) -> list[ScoredProduct]:
    """``limit`` products taken in turn from each category (in order of first appearance)."""
    groups: dict[str, list[ScoredProduct]] = {}
    for item in scored:
        groups.setdefault(item.category, []).append(item)
    queues = [list(reversed(members)) for members in groups.values()]
    out: list[ScoredProduct] = []
    while len(out) < min(limit, len(scored)):
        for queue in queues:
            if queue and len(out) < limit:
                out.append(queue.pop())
    return out


__all__ = [
    "EXTRACT_SUITES",
    "KEYS",
    "SPEC_DUMP",
    "SPLIT_SEED",
    "ExtractSuite",
    "ScoredProduct",
    "cut_specifications",
    "flipkart_attribute_products",
    "is_extract_suite",
    "load_extract_suite",
    "occurs",
    "stated_pairs",
]
