from pathlib import Path

import pytest

from llmcat import Taxonomy, TaxonomyError


def test_from_labels_is_flat_and_ids_are_labels() -> None:
    tax = Taxonomy.from_labels(["Shoes", " Toys ", "Mobile Phones"])
    assert [c.id for c in tax.roots()] == ["Shoes", "Toys", "Mobile Phones"]
    assert tax.is_flat and len(tax) == 3 and tax.depth == 1
    with pytest.raises(TaxonomyError, match="label 3 of 4 is blank"):  # never dropped unsaid
        Taxonomy.from_labels(["Shoes", " Toys ", "", "Mobile Phones"])


def test_from_labels_rejects_duplicates_and_empty() -> None:
    with pytest.raises(TaxonomyError, match="duplicate labels: Toys"):
        Taxonomy.from_labels(["Toys", "Shoes", "Toys"])
    with pytest.raises(TaxonomyError, match="at least one"):
        Taxonomy.from_labels([])
    with pytest.raises(TaxonomyError, match="label 1 of 2 is blank"):
        Taxonomy.from_labels(["", "  "])


def test_from_paths_adds_missing_ancestors() -> None:
    tax = Taxonomy.from_paths(["Clothing > Men > Shirts", "Clothing > Women", "Toys"])
    assert len(tax) == 5
    shirts = tax.find_path("Clothing > Men > Shirts")
    assert shirts is not None and shirts.depth == 3
    assert [c.name for c in tax.ancestors(shirts.id)] == ["Clothing", "Men", "Shirts"]
    assert sorted(c.path_text for c in tax.leaves()) == [
        "Clothing > Men > Shirts",
        "Clothing > Women",
        "Toys",
    ]
    assert [c.name for c in tax.children(tax.find_path("Clothing").id)] == ["Men", "Women"]  # type: ignore[union-attr]


def test_version_changes_with_content() -> None:
    a = Taxonomy.from_labels(["A", "B"])
    assert a.version == Taxonomy.from_labels(["A", "B"]).version
    assert a.version != Taxonomy.from_labels(["A", "C"]).version


def test_google_format(tmp_path: Path) -> None:
    f = tmp_path / "google.txt"
    f.write_text(
        "# Google_Product_Taxonomy_Version: 2021-09-21\n"
        "1 - Animals & Pet Supplies\n"
        "3237 - Animals & Pet Supplies > Live Animals\n"
        "166 - Apparel & Accessories\n"
        "1604 - Apparel & Accessories > Clothing\n"
    )
    for tax in (Taxonomy.from_google(f), Taxonomy.from_file(f)):
        assert len(tax) == 4
        assert tax.get("1604").path == ("Apparel & Accessories", "Clothing")
        assert tax.get("1604").parent_id == "166"


def test_shopify_format(tmp_path: Path) -> None:
    f = tmp_path / "shopify.txt"
    f.write_text(
        "gid://shopify/TaxonomyCategory/aa : Apparel & Accessories\n"
        "gid://shopify/TaxonomyCategory/aa-1 : Apparel & Accessories > Clothing\n"
        "gid://shopify/TaxonomyCategory/aa-1-1 : Apparel & Accessories > Clothing > Activewear\n"
    )
    for tax in (Taxonomy.from_shopify(f), Taxonomy.from_file(f)):
        assert tax.get("aa-1-1").path_text == "Apparel & Accessories > Clothing > Activewear"
        assert tax.get("aa-1-1").parent_id == "aa-1"


def test_bad_google_line_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "g.txt"
    f.write_text("1 - A\nnot a line\n")
    with pytest.raises(TaxonomyError, match="line 2"):
        Taxonomy.from_google(f)


def test_real_google_and_shopify_files(shared_dir: Path) -> None:
    google = Taxonomy.from_google(shared_dir / "taxonomies/google_product_taxonomy_2021-09-21.txt")
    assert len(google) == 5595 and len(google.leaves()) == 4719 and len(google.roots()) == 21
    shopify = Taxonomy.from_shopify(shared_dir / "taxonomies/shopify_categories_2024-10.txt")
    assert len(shopify) == 10365 and len(shopify.leaves()) == 8326 and len(shopify.roots()) == 25


def test_truncated_cuts_depth() -> None:
    tax = Taxonomy.from_paths(["A > B > C > D", "A > E"]).truncated(2)
    assert tax.depth == 2 and len(tax) == 3
    assert sorted(c.path_text for c in tax.leaves()) == ["A > B", "A > E"]


def test_a_description_changes_what_is_embedded_and_the_version_only_where_given() -> None:
    bare = Taxonomy.from_labels(["Shoes", "Toys"])
    described = Taxonomy.from_labels(["Shoes", "Toys"], descriptions={"Shoes": "boots, sandals"})
    assert bare.version == Taxonomy.from_labels(["Shoes", "Toys"]).version
    assert described.version != bare.version  # cached embeddings are not reused across them
    assert described.get("Shoes").embedding_text == "Shoes: boots, sandals"
    assert described.get("Toys").embedding_text == "Toys"
    with pytest.raises(TaxonomyError, match="not a label"):
        Taxonomy.from_labels(["Shoes"], descriptions={"Boots": "x"})
