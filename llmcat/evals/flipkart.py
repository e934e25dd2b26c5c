"""Loader for the Flipkart products CSV (PromptCloud crawl; the Kaggle file has the same columns)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from llmcat import Product
from llmcat.io.specifications import parse_specifications


def category_path(tree: str, max_depth: int = 3) -> list[str]:
    """Levels of ``["A >> B >> C >> ..."]``, cut at ``max_depth``; a cut-off title node is dropped."""
    try:
        raw = json.loads(tree)[0]
    except (ValueError, IndexError, TypeError):
        raw = tree.strip('[]"')
    parts = [p.strip() for p in raw.split(">>") if p.strip()]
    parts = [p for p in parts if not p.endswith("...")]
    return parts[:max_depth]


def load_flipkart(
    path: Path, *, max_depth: int = 3, limit: int | None = None
) -> Iterator[tuple[Product, list[str]]]:
    """(product, gold path) per row, in file order."""
    csv.field_size_limit(16 * 1024 * 1024)
    with path.open(encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            if limit is not None and n >= limit:
                return
            specs = parse_specifications(row.get("product_specifications", ""))
            brand = (row.get("brand") or specs.get("Brand", "")).strip()
            product = Product(
                id=row.get("uniq_id") or str(n),
                title=row.get("product_name", ""),
                description=row.get("description", ""),
                brand=brand,
                attributes={k: v for k, v in specs.items() if k != "Brand"},
            )
            yield product, category_path(row.get("product_category_tree", ""), max_depth)
