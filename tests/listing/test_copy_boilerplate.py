"""Copy a merchandiser would ship: no shop boilerplate, no sentence twice, facts as bullets, a
thin product said to be thin, and a model its copy fit distrusts not asked (issue 40)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import sentencex

from llmcat import Describer, Product
from llmcat.backends.fake import FakeBackend
from llmcat.cli import main
from llmcat.io.inputs import coerce_product
from llmcat.io.specifications import parse_specifications
from llmcat.listing.boilerplate import boilerplate_in, product_sentences
from llmcat.listing.copyfit import copy_fit_for, model_copy_decision

EMBEDDED = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: what issue 40 says never reaches a title, bullet or body
SHOP_WORDS = [
    r"flipkart",
    r"\brs\.?\s?\d",
    r"\bbuy\b.{0,160}?\b(?:at|for|online)\b",
    r"free shipping",
    r"cash on delivery",
    r"genuine products?",
    r"30 day replacement",
    r"only in india|in india only",
]

# Written for these tests in the shapes marketplace exports take (not copied from a data set).
BOTTLE = Product(
    id="b1",
    title="Aqua Steel Water Bottle 750 ml",
    brand="Aqua",
    description=(
        "Buy Aqua Steel Water Bottle 750 ml for Rs.399 online. Aqua Steel Water Bottle 750 ml at "
        "best prices with FREE shipping & cash on delivery. Only Genuine Products. 30 Day "
        "Replacement Guarantee."
    ),
    attributes={"Material": "Stainless Steel", "Capacity": "750 ml", "Colour": "Silver"},
)
CURTAIN_TEXT = (
    "Key Features of Linea Polyester Door Curtain Floral,Linea Polyester Door Curtain (213 cm, "
    "Pack of 2) Price: Rs. 899 This curtain brightens a room.It is made from soft polyester. "
    "This curtain brightens a room. Great Discounts, Only Genuine Products, Free Shipping.,"
    "Specifications of Linea Polyester Door Curtain General Brand Linea Type Eyelet Length 213 cm"
)


def sentences_twice(fields: list[str]) -> list[str]:
    """Sentences of five words or more said twice in one copy."""
    said = [
        " ".join(re.findall(r"\w+", s.lower()))
        for field in fields
        for s in sentencex.segment("en", field)
    ]
    long = [s for s in said if len(s.split()) >= 5]
    return sorted({s for s in long if long.count(s) > 1})


def test_shop_sentences_prices_dumps_and_repeats_are_not_product_sentences() -> None:
    assert product_sentences(CURTAIN_TEXT) == [
        "This curtain brightens a room.",
        "It is made from soft polyester.",
    ]
    assert product_sentences(BOTTLE.description) == []
    # a product clause joined to the shop's by a spaced dash is kept; a cut-off end is not
    text = "Tonneau dial, brass case - Great Discounts, Free Shipping. Water resistant. Give yo"
    assert product_sentences(text) == ["Tonneau dial, brass case", "Water resistant."]
    assert "Rs. 499" in boilerplate_in("Price: Rs. 499 only") or boilerplate_in("Rs. 499")
    assert boilerplate_in("Cotton towel, machine washable.") == []


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            '{"product_specification"=>[{"key"=>"Brand", "value"=>"X"}, {"key"=>"GSM", "value"=>"500"}]}',
            {"Brand": "X", "GSM": "500"},
        ),
        ('{"product_specification"=>nil}', {}),
        ('{"Colour": "Red", "Size": null}', {"Colour": "Red"}),
        ('[{"key": "Material", "value": "Cotton"}]', {"Material": "Cotton"}),
        ("Material: Cotton; Size: M", {"Material": "Cotton", "Size": "M"}),
        ([["Material", "Cotton"], ["Size", "M"]], {"Material": "Cotton", "Size": "M"}),
    ],
)
def test_specification_cells_in_every_export_format_become_attributes(
    cell: object, expected: dict[str, str]
) -> None:
    assert parse_specifications(cell) == expected


def test_a_specifications_column_is_the_products_attributes_and_names_a_missing_brand() -> None:
    record = {
        "product_name": "Towel",
        "brand": "",
        "product_specifications": "Brand: Sathi; GSM: 500",
    }
    product = coerce_product(record, 0)
    assert product.brand == "Sathi" and product.attributes == {"Brand": "Sathi", "GSM": "500"}


def test_boilerplate_never_reaches_the_copy_and_facts_come_first() -> None:
    d = Describer(backend=FakeBackend(model=EMBEDDED)).describe(BOTTLE)
    fields = [d.title, *d.bullets, d.body]
    assert not [p for p in SHOP_WORDS if re.search(p, " ".join(fields), re.IGNORECASE)]
    assert len(d.bullets) >= 2 and "Material: Stainless Steel" in " ".join(d.bullets)
    assert d.used_attributes and sentences_twice(fields) == []


def test_model_copy_with_boilerplate_is_found() -> None:
    product = Product(title="Mug", attributes={"Material": "Ceramic"})
    d = Describer(
        backend=FakeBackend(
            [
                '{"title": "Ceramic Mug", "bullets": ["Free Shipping on every order"], '
                '"body": "Buy this ceramic mug online at Flipkart.com for Rs. 199."}'
            ]
            * 2
        ),
        fallback=None,
    ).describe(product)
    assert {f.kind for f in d.findings} >= {"boilerplate"} and d.flagged


def test_a_title_only_product_is_flagged_thin_and_never_padded_with_its_title() -> None:
    backend = FakeBackend(model="any-model")
    d = Describer(backend=backend).describe(Product(title="Stainless steel water bottle"))
    assert d.flagged and [f.kind for f in d.findings] == ["thin"]
    assert d.body != d.title and "Stainless steel water bottle" not in d.body
    assert not backend.requests  # a model asked about a title alone would invent


def test_the_embedded_model_is_not_asked_for_copy_its_fit_says_fails() -> None:
    fit = copy_fit_for(EMBEDDED)
    assert fit is not None and fit.share < 0.2
    asks, why = model_copy_decision("auto", EMBEDDED)
    assert not asks and "0 of 56" in why
    backend = FakeBackend(model=EMBEDDED)
    d = Describer(backend=backend).describe(BOTTLE)
    assert not backend.requests and d.source == "composed" and d.usage.calls == 0
    # asked anyway when told, and a model without a fit is asked
    asked = FakeBackend(model=EMBEDDED)
    Describer(backend=asked, ask_model="always").describe(BOTTLE)
    assert asked.requests
    assert model_copy_decision("auto", "gpt-4o-mini")[0]


def test_describe_explain_says_whether_the_model_is_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["describe", "--explain", "--backend", "fake", "--model", EMBEDDED]) == 0
    out = capsys.readouterr().out
    assert "not asked" in out and "0 of 56" in out


def test_flipkart_boilerplate_products_get_copy_without_it(shared_dir: Path) -> None:
    """Issue 40's 20 products: real Flipkart rows whose descriptions are shop boilerplate."""
    path = shared_dir / "datasets" / "flipkart_1050.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if "flipkart" in r["description"].lower()]
    rows = rows[:: max(1, len(rows) // 20)][:20]
    records = [
        {k: r[k] for k in ("product_name", "description", "brand", "product_specifications")}
        for r in rows
    ]
    copies = Describer(backend=FakeBackend(model=EMBEDDED)).describe_many(records)
    for d in copies:
        fields = [d.title, *d.bullets, d.body]
        text = " ".join(fields)
        assert not [p for p in SHOP_WORDS if re.search(p, text, re.IGNORECASE)], text
        assert sentences_twice(fields) == [], d.product_id
        assert len(d.bullets) >= 2 or not d.used_attributes, d.product_id
        assert d.source == "composed" and d.usage.calls == 0
