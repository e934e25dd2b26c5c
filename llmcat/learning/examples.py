"""Labelled products ("examples") that the ``knn`` strategy learns from.

``load_examples`` takes them as a list (``(product, path)`` pairs, or records in the eval dataset
format ``{"product": {...}, "gold": {"path": [...]}}``, or flat ``{"title": ..., "category":
"A > B"}`` rows), a ``.jsonl`` / ``.json`` / ``.csv`` file of such records, or a pandas DataFrame
(one row per product, a ``category`` or ``path`` column). Every example's category must be a node
of the taxonomy: the first that is not is a ConfigError naming its row.

A review file (``llmcat.io.review``) is read as it is: rows with a ``category`` filled in are examples,
the others are skipped.

``ExampleIndex`` embeds the examples once (cached on disk by content and embedder) and finds the
nearest ones to a product's vector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcat.embeddings import Embedder, TextIndex, product_text
from llmcat.errors import ConfigError, InputError
from llmcat.io.cells import formula_text
from llmcat.io.inputs import coerce_product, read_records
from llmcat.io.review import REVIEW_COLUMNS, is_review_row
from llmcat.io.tables import Frame
from llmcat.taxonomy.tree import Category, Taxonomy
from llmcat.types import Product

#: columns (or keys) that name an example's category, best first
CATEGORY_KEYS = ("path", "category", "category_path", "category_id", "label")


#: labelled products as ``load_examples`` takes them: a file, a DataFrame, or a list of
#: Examples, ``(product, path)`` pairs or records
ExampleSource = (
    str
    | Path
    | Frame
    | Iterable[
        "Example | tuple[Product | str | Mapping[str, object], str | Sequence[str]] | Mapping[str, object]"
    ]
)


@dataclass(frozen=True)
class Example:
    """One labelled product."""

    product: Product
    category: Category


def load_examples(source: ExampleSource, taxonomy: Taxonomy) -> list[Example]:
    """Examples from a list, a file path or a DataFrame (see the module docstring)."""
    if isinstance(source, (str, Path)):
        # records, pairs or errors of the caller's file or list, each looked at as it comes
        rows: Iterable[Any] = read_records(source)
        where = str(source)
    elif hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        rows = source.to_dict(orient="records")
        where = "the DataFrame"
    else:
        rows = source
        where = "examples"
    examples = []
    for n, row in enumerate(rows, 1):
        if is_review_row(row):
            if row.get("category") in (None, ""):
                continue  # a review row nobody corrected
            row = {key: formula_text(value) for key, value in row.items()}
        product, category = _example(row, n, where)
        node = _resolve(category, taxonomy)
        if node is None:
            shown = " > ".join(category) if isinstance(category, list) else category
            raise ConfigError(
                f"{where} row {n}: category {shown!r} is not a node of the taxonomy "
                f"{taxonomy.name!r}"
            )
        try:
            clean = coerce_product(product, n - 1)
        except InputError as exc:
            raise ConfigError(f"{where} row {n}: {exc}") from None
        examples.append(Example(clean, node))
    if not examples:
        raise ConfigError(f"{where} holds no examples")
    return examples


def _example(
    row: object, n: int, where: str
) -> tuple[Product | str | Mapping[str, object], object]:
    if isinstance(row, InputError):
        raise ConfigError(f"{where} row {n}: {row}")
    if isinstance(row, tuple) and len(row) == 2:
        return row[0], row[1]
    if not isinstance(row, Mapping):
        raise ConfigError(f"{where} row {n}: expected a record or a (product, path) pair")
    if "product" in row and "gold" in row:  # the eval dataset format
        gold = row["gold"]
        path = gold.get("path") if isinstance(gold, Mapping) else gold
        return row["product"], path
    key = next((k for k in CATEGORY_KEYS if row.get(k) not in (None, "")), None)
    if key is None:
        raise ConfigError(
            f"{where} row {n}: no category - give one of the fields {', '.join(CATEGORY_KEYS)}"
        )
    if isinstance(row.get("product"), Mapping):  # a review file's JSONL row
        return row["product"], row[key]
    skip = {*CATEGORY_KEYS, "gold", *REVIEW_COLUMNS}
    return {k: v for k, v in row.items() if k not in skip}, row[key]


def _resolve(category: object, taxonomy: Taxonomy) -> Category | None:
    if isinstance(category, Category):
        category = category.id
    if isinstance(category, (list, tuple)):
        return taxonomy.find_path([str(c) for c in category])
    if not isinstance(category, str):
        return None
    if category in taxonomy:
        return taxonomy.get(category)
    return taxonomy.find_path(
        [part.strip() for part in re.split(r">|›|/", category) if part.strip()]
    )


class ExampleIndex(TextIndex[Example]):
    """The examples' embeddings, computed once per process and cached on disk."""

    def __init__(
        self, embedder: Embedder, examples: Sequence[Example], *, cache_dir: Path | None
    ) -> None:
        texts = [product_text(e.product) for e in examples]
        super().__init__(embedder, examples, texts, label="examples", cache_dir=cache_dir)


__all__ = ["Example", "ExampleIndex", "load_examples"]
