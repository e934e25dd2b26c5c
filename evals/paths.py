"""Where shared data lives: ``../shared`` beside the checkout, or ``LLMCAT_SHARED_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared data folder (never copied into the repository)."""
    return Path(os.environ.get("LLMCAT_SHARED_DIR") or REPO.parent / "shared")


def flipkart_csv() -> Path:
    return shared_dir() / "datasets" / "flipkart_1050.csv"


def google_taxonomy() -> Path:
    return shared_dir() / "taxonomies" / "google_product_taxonomy_2021-09-21.txt"
