"""The review loop: results that need review go to a file a person corrects, and the corrected file
is accepted as examples as it is (``load_examples`` / ``--examples``).

A review row holds the product's own fields, what llmcat predicted (``predicted``, its
``confidence`` and the ``alternatives`` with their probabilities) and an empty ``category`` for the
reviewer: type the right path (or copy one of the alternatives). Rows left empty are skipped when
the file is read back as examples; the other review columns never become product attributes.

``.csv`` files have one column per product field (attributes as JSON in ``attributes``); any other
suffix is JSONL with ``{"id", "product": {...}, "predicted", "confidence", "alternatives",
"category"}``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO

from llmcat.io.cells import spreadsheet_safe
from llmcat.io.output import check_writable
from llmcat.types import Classification, Product

#: columns a review file adds to the product's fields
REVIEW_COLUMNS = ("predicted", "confidence", "alternatives")
CSV_COLUMNS = ("id", "title", "brand", "description", "attributes", *REVIEW_COLUMNS, "category")


def is_review_row(row: object) -> bool:
    """Whether a record comes from a review file (it has the ``predicted`` column)."""
    return isinstance(row, dict) and "predicted" in row


class ReviewWriter:
    """Writes rows to review, one per ``add``, crash-safe like the results: rows go to
    ``<path>.partial``, flushed one by one, and ``commit`` renames it over ``path``; ``close``
    without ``commit`` keeps the partial file and leaves an existing review file as it was. A
    resumed batch writes the rows of the results it keeps again (``add`` for each), so the review
    file always matches the output."""

    def __init__(self, path: Path) -> None:
        check_writable(path)
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.rows = 0
        self._handle: IO[str] = self.partial.open("w", encoding="utf-8", newline="")
        self._csv = (
            csv.DictWriter(self._handle, fieldnames=CSV_COLUMNS)
            if path.suffix.lower() == ".csv"
            else None
        )
        if self._csv is not None:
            self._csv.writeheader()

    def add(self, product: Product, result: Classification) -> None:
        """One result to review, with the product it is about."""
        alternatives = [
            {"path": " > ".join(a.path), "probability": round(a.probability, 4)}
            for a in result.alternatives
        ]
        review = {
            "predicted": " > ".join(result.path),
            "confidence": None if result.confidence is None else round(result.confidence, 4),
            "alternatives": alternatives,
            "category": None,
        }
        if self._csv is not None:
            self._csv.writerow(
                {
                    key: spreadsheet_safe(value)
                    for key, value in {
                        "id": product.id,
                        "title": product.title,
                        "brand": product.brand,
                        "description": product.description,
                        "attributes": json.dumps(product.attributes, ensure_ascii=False)
                        if product.attributes
                        else "",
                        "predicted": review["predicted"],
                        "confidence": review["confidence"],
                        "alternatives": " | ".join(
                            f"{a['path']} ({a['probability']})" for a in alternatives
                        ),
                        "category": "",
                    }.items()
                }
            )
        else:
            product_fields = product.model_dump(exclude_defaults=True)
            row = {"id": product.id, "product": product_fields, **review}
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.rows += 1

    def commit(self) -> None:
        """The batch is complete: the review file becomes the partial one, atomically."""
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        """Stop without committing (the partial file stays); after ``commit``, nothing."""
        if not self._handle.closed:
            self._handle.close()


__all__ = ["CSV_COLUMNS", "REVIEW_COLUMNS", "ReviewWriter", "is_review_row"]
