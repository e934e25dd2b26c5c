"""Shopify's attributes per category: values are Shopify's allowed values, read where the
product states them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcat.attributes.extractor import Extractor
from llmcat.attributes.shopify import find_shopify_attributes, schema_from, shopify_schema
from llmcat.cli.main import main
from llmcat.errors import ConfigError
from llmcat.io.inputs import ProductLike
from llmcat.types import Classification

ATTRIBUTES = {
    "version": "2025-03",
    "attributes": {
        "color": {
            "name": "Color",
            "description": "",
            "values": ["Black", "Navy Blue", "Blue", "Other"],
        },
        "size": {"name": "Size", "values": ["1", "2", "XL"]},
        "fabric": {"name": "Fabric", "values": ["Cotton", "Silk"]},
        "empty": {"name": "Empty", "values": ["Other"]},
    },
    "categories": {
        "gid://shopify/TaxonomyCategory/aa-1": ["color", "size", "fabric", "empty"],
        "gid://shopify/TaxonomyCategory/hg-1": ["color"],
    },
}
CATEGORIES = (
    "# Shopify Product Taxonomy - Categories: 2024-10\n"
    "# Format: {GID} : {Ancestor name} > ... > {Category name}\n"
    "gid://shopify/TaxonomyCategory/aa : Apparel & Accessories\n"
    "gid://shopify/TaxonomyCategory/aa-1 : Apparel & Accessories > Clothing\n"
    "gid://shopify/TaxonomyCategory/hg : Home & Garden\n"
    "gid://shopify/TaxonomyCategory/hg-1 : Home & Garden > Bedding\n"
)


class Clothing:
    """Chooses Clothing for every product (one at a time: ``extract``, not a batch)."""

    concurrency = 1

    async def aclassify(self, product: ProductLike) -> Classification:
        return Classification(
            product_id="1", category_id="aa-1", path=["Apparel & Accessories", "Clothing"]
        )


def test_shopifys_file_becomes_a_schema_of_allowed_values(tmp_path: Path) -> None:
    schema = shopify_schema(ATTRIBUTES)
    clothing = {s.name: s.values for s in schema.for_category("aa-1")}
    assert clothing == {"Color": ("Black", "Navy Blue", "Blue"), "Size": ("1", "2", "XL"),
                        "Fabric": ("Cotton", "Silk")}  # fmt: skip
    assert [s.name for s in schema.for_category("hg-1")] == ["Color"]
    path = tmp_path / "shopify_attributes_2025-03.json"
    path.write_text(json.dumps(ATTRIBUTES), encoding="utf-8")
    assert schema_from(str(path)) == schema
    assert find_shopify_attributes([tmp_path / "none", tmp_path]) == path
    with pytest.raises(ConfigError, match="no shopify_attributes"):
        find_shopify_attributes([tmp_path / "none"])


def test_values_come_from_the_chosen_categorys_allowed_values_only() -> None:
    extractor = Extractor(shopify_schema(ATTRIBUTES), backend="fake", categorizer=Clothing())
    result = extractor.extract(
        {
            "title": "Acme shirt in navy blue, size 2",
            "description": "Soft silk. Pack of 1.",
            "attributes": {"Fabric": "Cotton"},
        }
    )
    assert (result.category, result.category_id) == ("Apparel & Accessories > Clothing", "aa-1")
    values = {name: answer.value for name, answer in result.attributes.items()}
    # The product's own Fabric beats the description's word; a bare number in prose is no size.
    assert values == {"Color": "Navy Blue", "Size": None, "Fabric": "Cotton"}
    fabric = result.attributes["Fabric"].source
    assert fabric is not None and fabric.field == "attributes.Fabric"
    assert all(a.needs_review for a in result.attributes.values())
    assert result.dropped == 0


def test_extract_with_shopifys_taxonomy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "shopify_categories_2024-10.txt").write_text(CATEGORIES, encoding="utf-8")
    (tmp_path / "shopify_attributes_2025-03.json").write_text(
        json.dumps(ATTRIBUTES), encoding="utf-8"
    )
    monkeypatch.setenv("LLMCAT_TAXONOMY_DIR", str(tmp_path))
    code = main(["extract", "Black cotton t-shirt, XL", "--taxonomy", "shopify", "--backend",
                 "fake", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    allowed = {v for a in ATTRIBUTES["attributes"].values() for v in a["values"]}  # type: ignore[attr-defined]
    given = [a["value"] for a in result["attributes"].values() if a["value"] is not None]
    assert given and set(given) <= allowed
    assert result["category_id"] in {"aa-1", "hg-1"}
    (tmp_path / "shopify_attributes_2025-03.json").unlink()
    assert main(["extract", "a shirt", "--taxonomy", "shopify", "--backend", "fake"]) == 2
    assert "shopify_attributes" in capsys.readouterr().err


def test_a_code_value_is_not_read_from_a_word_of_prose() -> None:
    from llmcat.attributes.answers import allowed_value
    from llmcat.attributes.schema import AttributeSpec

    plug = AttributeSpec(name="Plug type", values=("IN", "US", "Type C"))
    prose = [("title", "Laptop Charger 65W in black, carry in warranty")]
    assert allowed_value(prose, plug).value is None
    assert allowed_value([("title", "Laptop Charger 65W, US plug")], plug).value == "US"
    assert allowed_value([("title", "USB-C charger type c")], plug).value == "Type C"


def test_a_stated_attribute_that_qualifies_another_thing_is_not_read() -> None:
    from llmcat.attributes.answers import allowed_value, related
    from llmcat.attributes.schema import AttributeSpec

    stated = [("attributes.Strap Color", "Gold"), ("attributes.Dial Color", "Champagne"),
              ("attributes.Color", "Silver")]  # fmt: skip
    assert [name for name, _ in related(stated, "Case color")] == ["attributes.Color"]
    assert next(name for name, _ in related(stated, "Dial color")) == "attributes.Dial Color"
    assert next(name for name, _ in related(stated, "Color")) == "attributes.Color"
    colours = AttributeSpec(name="Dial color", values=("Gold", "Champagne", "Silver"))
    assert allowed_value(related(stated, "Dial color"), colours).value == "Champagne"
    assert related([("attributes.Box Material", "Cardboard")], "Watch material") == []
