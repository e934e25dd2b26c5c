"""Where the harness finds its data.

- Built-in suites and baselines: inside the installed package (``llmcat/evals/datasets``,
  ``llmcat/evals/baselines``, put there by the wheel build), else the checkout's ``evals/``.
- Shared data (the Flipkart CSV, taxonomies): ``LLMCAT_SHARED_DIR``, else ``../shared`` beside
  the checkout (or beside the working directory). Never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: the source checkout's root when running from one (it holds pyproject.toml), else None
CHECKOUT: Path | None = (
    PACKAGE.parents[1] if (PACKAGE.parents[1] / "pyproject.toml").is_file() else None
)


def _data_dir(name: str) -> Path:
    inside = PACKAGE / name
    if inside.is_dir() or CHECKOUT is None:
        return inside
    return CHECKOUT / "evals" / name


def suites_dir() -> Path:
    """The folder of the built-in suites (``golden``)."""
    return _data_dir("datasets")


def baselines_dir() -> Path:
    """The folder of the committed baselines (``golden.json``)."""
    return _data_dir("baselines")


def shared_dir() -> Path:
    """The shared data folder: ``LLMCAT_SHARED_DIR``, else ``../shared`` of the checkout or of
    the working directory."""
    explicit = os.environ.get("LLMCAT_SHARED_DIR")
    if explicit:
        return Path(explicit)
    candidates = [c.parent / "shared" for c in (CHECKOUT, Path.cwd()) if c is not None]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def flipkart_csv() -> Path:
    """The Flipkart products CSV in the shared folder."""
    return shared_dir() / "datasets" / "flipkart_1050.csv"


def cdiscount_jsonl() -> Path:
    """The French Cdiscount products (3-level French category paths) in the shared folder."""
    return shared_dir() / "datasets" / "cdiscount_fr_2000.jsonl"


def oa_mine_jsonl(split: str) -> Path:
    """OA-Mine's ``train`` or ``test`` split (Amazon titles, product type, attribute values)."""
    return shared_dir() / "datasets" / "oa-mine" / f"{split}.jsonl"


def google_taxonomy() -> Path:
    """Google's product taxonomy in the shared folder."""
    return shared_dir() / "taxonomies" / "google_product_taxonomy_2021-09-21.txt"
